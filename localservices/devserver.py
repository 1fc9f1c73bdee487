"""``webmini run`` (the dev server) as a subprocess on a port it picks itself (``--port 0``)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .process import Service, ServiceError, stop_process, wait_until

ROOT = Path(__file__).resolve().parent.parent


class DevServer(Service):
    """A ``webmini run ...`` subprocess on a free loopback port (it binds ``--port 0``)."""

    program = "webmini run"

    def __init__(self, args: Sequence[str], cwd: str | Path,
                 env: Mapping[str, str] | None = None, timeout: float = 20.0) -> None:
        self.cwd = str(cwd)
        self.log_path = os.path.join(self.cwd, f"webmini-run-{id(self)}.log")
        child_env = dict(os.environ, PYTHONPATH=os.pathsep.join([self.cwd, str(ROOT)]),
                         PYTHONUNBUFFERED="1")
        child_env.pop("WEBMINI_LISTEN_FD", None)
        child_env.update(env or {})
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed by stop()
        cmd = [sys.executable, "-m", "webmini.cli", "run", *args]
        if "--port" not in args:
            cmd += ["--port", "0"]
        self.port = 0
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=child_env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if not self.wait_ready(timeout):
            out = self.output()
            self.stop()
            raise ServiceError(f"`webmini run` did not start:\n{out}")
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """True once the server printed the address it serves on."""
        match = re.search(r"webmini: serving on http://127\.0\.0\.1:(\d+)", self.output())
        if match:
            self.port = int(match.group(1))
        return match is not None

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log_text()

    def wait_for_output(self, text: str, timeout: float = 10.0) -> str:
        """Wait until ``text`` appears in the output; return the output."""
        wait_until(lambda: text in self.output(), timeout)
        return self.output()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the supervisor (it stops its workers); SIGKILL the group if it lingers.

        ``proc`` stays set: a test may read its return code afterwards.
        """
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, timeout, group=True)
        self._log.close()
