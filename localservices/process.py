"""What every local service runner shares: free ports, polling, a process's life cycle.

``Service`` is the small base class of every runner in this package: a
subclass starts its process its own way (``start``), says in one probe
whether it answers (``ready``), and inherits the rest: ``wait_ready`` (polls
``ready`` while the process lives, never a fixed sleep), ``stop`` (its clean
shutdown signal, SIGKILL after a timeout), ``running`` and the log
(``log_text``, ``log_tail``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar


class ServiceError(RuntimeError):
    """A private server could not be set up, started or stopped."""


_handed_out: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    Never the same port twice in one process: the kernel may give a port
    just closed here to the next bind to port 0, so two calls made before
    either server binds (an HTTP port and a stats port) could collide.
    """
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise ServiceError("no free loopback port left that this process has not handed out")


def child_pids(pid: int) -> list[int]:
    """Pids of the children of ``pid`` (Linux /proc; zombies included); [] if it is gone."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_state(pid: int) -> str:
    """The one-letter state of ``pid`` from /proc (R, S, Z...); ``X`` if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` every ``interval`` seconds: True as soon as it is, else False at
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float,
                 group: bool = False) -> None:
    """Send ``sig`` to a still-running process; SIGKILL it if it outlives ``timeout``.

    With ``group`` (a process started with ``start_new_session``), whatever is
    left of its process group is SIGKILLed afterwards in any case.
    """
    if proc.poll() is None:
        proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    if group:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    elif proc.poll() is None:
        proc.kill()
    proc.wait()


def accepts(port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``127.0.0.1:port`` succeeds (it is closed at once)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


class Exited(ServiceError):
    """The process ended while we waited for it to answer."""


class Service:
    """One local server process: started by the subclass, then polled, logged and stopped."""

    #: the server's name in messages
    program: ClassVar[str] = "server"
    #: its clean shutdown
    stop_signal: ClassVar[int] = signal.SIGTERM
    #: SIGKILL the whole process group (a server started with ``start_new_session``) on stop
    kill_group: ClassVar[bool] = False

    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | str = ""

    def ready(self) -> bool:
        """One probe: True once the server answers (the subclass says how)."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 30.0, interval: float = 0.05) -> bool:
        """Poll ``ready`` until it is True; False if the process exits or time runs out."""
        def probe() -> bool:
            if not self.running:
                raise Exited(self.program)
            return self.ready()

        try:
            return wait_until(probe, timeout, interval)
        except Exited:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """``stop_signal``, then SIGKILL if the process outlives ``timeout``."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, self.stop_signal, timeout, group=self.kill_group)

    def log_text(self) -> str:
        """Everything the server logged so far."""
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log (for failure messages)."""
        return self.log_text()[-chars:]
