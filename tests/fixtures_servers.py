"""Fixtures: fixtures_servers (filled in by its owner)."""


# ===========================================================================
# Dev-server section (webmini run): fixtures for tests/test_devserver.py,
# tests/test_cli.py and tests/test_green.py. Self-contained: imports are local.
# ===========================================================================


class WebminiRunProcess:
    """A `webmini run ...` subprocess on a free loopback port (--port 0)."""

    def __init__(self, args, cwd, env=None, timeout=20.0):
        import os
        import subprocess
        import sys

        self.cwd = str(cwd)
        self.log_path = os.path.join(self.cwd, f"webmini-run-{id(self)}.log")
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        child_env = dict(os.environ, PYTHONPATH=os.pathsep.join([self.cwd, repo]),
                         PYTHONUNBUFFERED="1")
        child_env.pop("WEBMINI_LISTEN_FD", None)
        child_env.update(env or {})
        self._log = open(self.log_path, "wb")
        cmd = [sys.executable, "-m", "webmini.cli", "run", *args]
        if "--port" not in args:
            cmd += ["--port", "0"]
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=child_env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.port = self._wait_for_port(timeout)
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self):
        """Everything the process printed so far (stdout and stderr)."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_output(self, text, timeout=10.0):
        """Wait until `text` appears in the output; return the output."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            time.sleep(0.05)
        return self.output()

    def _wait_for_port(self, timeout):
        import re
        import time

        import pytest

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"webmini: serving on http://127\.0\.0\.1:(\d+)", self.output())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"`webmini run` did not start:\n{self.output()}")

    def stop(self):
        """SIGTERM the process group (supervisor and workers), SIGKILL if it lingers."""
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._log.close()


def _webmini_run_fixture(tmp_path):
    started = []

    def start(*args, cwd=None, env=None, timeout=20.0):
        proc = WebminiRunProcess(list(args), cwd or tmp_path, env=env, timeout=timeout)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def _register_webmini_run():
    import pytest

    return pytest.fixture(name="webmini_run")(_webmini_run_fixture)


webmini_run = _register_webmini_run()
