"""gunicorn with webmini's config (webmini/serving/gunicorn_conf.py) on a free loopback port.

``GunicornServer`` is a plain class (tests and benchmarks import it); the
``start_gunicorn`` factory fixture stops every server it started.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from localservices import free_port

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


class GunicornServer:
    """``gunicorn -c python:webmini.serving.gunicorn_conf <module>`` run from ``workdir``."""

    def __init__(self, workdir: Path, module: str = "examples.hello:application",
                 processes: int = 2, env: Mapping[str, str] | None = None,
                 args: Sequence[str] = (), pythonpath: Sequence[str | Path] = ()) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.module = module
        self.processes = processes
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.pythonpath = [str(p) for p in pythonpath]
        self.port = 0
        self.log_path = self.workdir / "gunicorn.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line."""
        # gunicorn's --pythonpath takes one comma-separated list (a repeated flag replaces it).
        extra = ["--pythonpath", ",".join(self.pythonpath)] if self.pythonpath else []
        return [GUNICORN, "-c", "python:webmini.serving.gunicorn_conf", *extra,
                "--error-logfile", "-", *self.args, self.module]

    def environment(self) -> dict[str, str]:
        """The environment: addresses and sizes through webmini's variables."""
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.update({"WEBMINI_HTTP": f"127.0.0.1:{self.port}",
                    "WEBMINI_PROCESSES": str(self.processes), "WEBMINI_LISTEN": "128"})
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> GunicornServer:
        """Start gunicorn and wait until every worker answers; fail the test if it does not."""
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    self.command(), cwd=self.workdir, env=self.environment(),
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            if self.wait_ready(timeout):
                return self
            log = self.log_tail()
            self.stop()
            if "Address already in use" not in log:
                break
        pytest.fail(f"gunicorn ({' '.join(self.command())}) did not start:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The live workers (children of the master)."""
        assert self.proc is not None
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def wait_ready(self, timeout: float = 30.0, exclude: Sequence[int] = ()) -> bool:
        """Wait for ``processes`` workers (none in ``exclude``) with the app loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            booted = self.log_tail(10**7).count(") ready")
            pids = [p for p in self.worker_pids() if p not in exclude]
            if len(pids) >= self.processes and booted >= self.processes:
                with contextlib.suppress(OSError):
                    self.get("/")
                    return True
            time.sleep(0.1)
        return False

    def get(self, path: str = "/", headers: Mapping[str, str] | None = None,
            method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection: (status, lower-case headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=dict(headers or {}))
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def log_tail(self, size: int = 6000) -> str:
        """The end of the log."""
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (TERM), then KILL of the whole process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None


@pytest.fixture
def start_gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., GunicornServer]]:
    """Factory: ``start_gunicorn(**GunicornServer options)`` -> a ready server, stopped after."""
    servers: list[GunicornServer] = []

    def start(**kw: Any) -> GunicornServer:
        server = GunicornServer(tmp_path_factory.mktemp("gunicorn"), **kw)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
