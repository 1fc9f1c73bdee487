"""uWSGI run with the repository's ``uwsgi.ini``, its addresses set through the environment.

``UwsgiServer`` starts one in a work directory (HTTP socket and stats on free
loopback ports, the uwsgi-protocol socket a unix socket there), waits until
every worker has loaded the app, and stops it (orphaned workers included).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .client import Reply, http_get
from .process import Service, ServiceError, child_pids, free_port, process_state

ROOT = Path(__file__).resolve().parent.parent
UWSGI_INI = ROOT / "uwsgi.ini"


def uwsgi_binary() -> str:
    """Path of the ``uwsgi`` executable: next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "uwsgi"
    if beside.exists():
        return str(beside)
    venv = ROOT / ".venv" / "bin" / "uwsgi"
    if venv.exists():
        return str(venv)
    return shutil.which("uwsgi") or "uwsgi"


def read_stats(port: int, timeout: float = 2.0) -> dict[str, Any]:
    """uWSGI's stats JSON from ``127.0.0.1:port`` (the server sends it on connect, then closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    result: dict[str, Any] = json.loads(b"".join(chunks))
    return result


def _live_children(pid: int) -> list[int]:
    """Children of ``pid`` that have not exited (zombies excluded)."""
    return [child for child in child_pids(pid) if process_state(child) not in ("Z", "X")]


class UwsgiServer(Service):
    """uWSGI started with ``uwsgi.ini`` on free loopback ports, files in ``workdir``.

    ``env`` adds/overrides environment variables (``WEBMINI_*`` settings of
    uwsgi.ini); ``args`` are extra command-line options appended after
    ``--ini`` (they override the file's values for plain options).
    """

    def __init__(
        self,
        workdir: Path,
        module: str = "examples.hello:application",
        processes: int = 2,
        gevent: int = 1000,
        listen: int | None = None,
        ini: Path = UWSGI_INI,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        name: str = "uwsgi",
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.module = module
        self.processes = processes
        self.gevent = gevent
        self.listen = listen
        self.ini = Path(ini)
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.name = name
        self.http_port = 0
        self.socket_port = 0
        self.stats_port = 0
        self.touch_reload = self.workdir / f"{name}.reload"
        # A unix socket, as shipped (uwsgi.ini refuses TCP for the uwsgi protocol).
        self.socket_path = self.workdir / f"{name}.sock"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._seen_pids: set[int] = set()
        self._exclude: tuple[int, ...] = ()

    # -- addresses ----------------------------------------------------
    @property
    def http_address(self) -> str:
        """``127.0.0.1:<port>`` of the HTTP socket (``http-socket``)."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def socket_address(self) -> str:
        """Path of the uwsgi-protocol unix socket (for nginx: ``unix:<path>``)."""
        return str(self.socket_path)

    @property
    def pid(self) -> int:
        """The master's process id."""
        assert self.proc is not None, "uWSGI is not running"
        return self.proc.pid

    def environment(self) -> dict[str, str]:
        """The environment uWSGI is started with (addresses, module, sizes)."""
        env = dict(os.environ)
        # The test process's own gevent/pytest settings must not leak in.
        env.pop("PYTHONPATH", None)
        env.update({
            "WEBMINI_MODULE": self.module,
            "WEBMINI_HTTP": self.http_address,
            "WEBMINI_SOCKET": self.socket_address,
            # The socket's group: the test process's own (nginx runs as it).
            "WEBMINI_SOCKET_GROUP": str(os.getgid()),
            "WEBMINI_STATS": f"127.0.0.1:{self.stats_port}",
            "WEBMINI_PROCESSES": str(self.processes),
            "WEBMINI_GEVENT": str(self.gevent),
            "WEBMINI_TOUCH_RELOAD": str(self.touch_reload),
        })
        if self.listen is not None:
            env["WEBMINI_LISTEN"] = str(self.listen)
        if os.geteuid() == 0:
            # uwsgi.ini refuses to run its workers as root unless told; the
            # suite runs as root in CI and serves apps from root-only temp
            # dirs, so it says so here (tests/test_security_uwsgi.py checks
            # the refusal and the privilege drop themselves).
            env["WEBMINI_ALLOW_ROOT"] = "1"
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """The command line: ``uwsgi --ini uwsgi.ini`` plus extra options."""
        return [uwsgi_binary(), "--ini", str(self.ini), *self.args]

    # -- life cycle -----------------------------------------------------
    def start(self, timeout: float = 30.0) -> UwsgiServer:
        """Start uWSGI and wait until every worker has loaded the app; fail the test if not."""
        last = ""
        for _ in range(3):  # a port picked free may be taken before uWSGI binds it
            self.http_port, self.socket_port, self.stats_port = (
                free_port(), free_port(), free_port())
            with open(self.log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    self.command(), cwd=self.workdir, env=self.environment(),
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            if self.wait_ready(timeout):
                return self
            last = self.log_tail()
            self.stop()
            if "Address already in use" not in last:
                break
        raise ServiceError(f"uWSGI ({' '.join(self.command())}) did not become ready:\n{last}")

    def wait_ready(self, timeout: float = 30.0, interval: float = 0.05,
                   exclude_pids: Sequence[int] = ()) -> bool:
        """Wait until ``processes`` workers (none in ``exclude_pids``) have the app loaded."""
        self._exclude = tuple(exclude_pids)
        return super().wait_ready(timeout, interval)

    def ready(self) -> bool:
        """True when enough workers report the app loaded and the HTTP socket answers."""
        try:
            workers = self.stats()["workers"]
        except (OSError, ValueError, KeyError):
            return False
        live = [w for w in workers
                if w.get("pid") and w["pid"] not in self._exclude and w.get("apps")]
        if len(live) < self.processes:
            return False
        try:
            http_get(self.http_port, "/", timeout=2.0)
            return True
        except OSError:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the master (die-on-term: stop), SIGKILL the workers it leaves behind.

        The master reaps its stopped workers only at its next once-a-second
        check, then exits: once every process it started has exited (they
        do within milliseconds), it is SIGKILLed instead of waited for.
        """
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            # PERF: ~1 s less per stop (the suite stops uWSGI dozens of times).
            while proc.poll() is None and time.monotonic() < deadline:
                if _live_children(proc.pid) == []:
                    proc.kill()
                    break
                time.sleep(0.005)
        super().stop(timeout)
        self._kill_orphans()

    def _kill_orphans(self) -> None:
        # A worker outlives a master killed with SIGKILL: kill the workers
        # this server reported (and only those still running uWSGI).
        for pid in self._seen_pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"uwsgi" in cmdline.lower() or b"webmini" in cmdline:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self._seen_pids.clear()

    def reload(self) -> None:
        """Graceful reload: SIGHUP to the master."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def touch(self) -> None:
        """Graceful reload: touch the ``touch-reload`` file."""
        self.touch_reload.touch()
        now = time.time()
        os.utime(self.touch_reload, (now, now))

    # -- introspection ------------------------------------------------------
    def stats(self, timeout: float = 2.0) -> dict[str, Any]:
        """uWSGI's JSON stats (``stats`` socket)."""
        result = read_stats(self.stats_port, timeout)
        self._seen_pids.update(w["pid"] for w in result.get("workers", ()) if w.get("pid"))
        return result

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers, from the stats server."""
        return [w["pid"] for w in self.stats()["workers"] if w.get("pid")]

    def get(self, path: str = "/", timeout: float = 10.0, **kw: Any) -> Reply:
        """A request to the HTTP socket."""
        return http_get(self.http_port, path, timeout=timeout, **kw)
