"""gunicorn with webmini's config (webmini/serving/gunicorn_conf.py) on a free loopback port."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .process import Service, ServiceError, child_pids, free_port

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


class GunicornServer(Service):
    """``gunicorn -c python:webmini.serving.gunicorn_conf <module>`` run from ``workdir``."""

    program = "gunicorn"
    kill_group = True  # the workers go with the master

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
        self._exclude: tuple[int, ...] = ()

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
        raise ServiceError(f"gunicorn ({' '.join(self.command())}) did not start:\n"
                           f"{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The live workers (children of the master)."""
        assert self.proc is not None
        return child_pids(self.proc.pid)

    def wait_ready(self, timeout: float = 30.0, interval: float = 0.1,
                   exclude: Sequence[int] = ()) -> bool:
        """Wait for ``processes`` workers (none in ``exclude``) with the app loaded."""
        self._exclude = tuple(exclude)
        return super().wait_ready(timeout, interval)

    def ready(self) -> bool:
        """True when every worker booted and one of them answers ``/``."""
        booted = self.log_text().count(") ready")
        pids = [p for p in self.worker_pids() if p not in self._exclude]
        if len(pids) < self.processes or booted < self.processes:
            return False
        try:
            self.get("/")
            return True
        except OSError:
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

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the log."""
        return super().log_tail(chars)
