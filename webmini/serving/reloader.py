"""The dev-server supervisor: pre-forked workers and auto-reload on source change.

The supervisor binds the listening socket, then runs the current command
line again in N child processes that inherit it (environment variable
``WEBMINI_LISTEN_FD``). With ``reload`` it watches Python files with
watchfiles and replaces the children when one changes: the new ones start
first, and the old ones are stopped (gracefully) once the new ones serve
(each says so on an inherited pipe, ``WEBMINI_READY_FD``) or have failed.
The socket stays open throughout, so no client is refused or kept waiting.
It never imports the application itself.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from webmini._extras import require

__all__ = ["LISTEN_FD_ENV", "READY_FD_ENV", "WORKERS_ENV", "announce", "listen", "ready",
           "supervise"]

#: Environment variable through which the supervisor hands its listening socket to a child.
LISTEN_FD_ENV = "WEBMINI_LISTEN_FD"
#: Environment variable telling a child how many worker processes share the socket.
WORKERS_ENV = "WEBMINI_WORKERS"
#: Environment variable naming the pipe a child writes to once it serves.
READY_FD_ENV = "WEBMINI_READY_FD"

log = logging.getLogger(__name__)

_STOP_GRACE = 5.0  # seconds a child gets to stop after SIGTERM
_READY_TIMEOUT = 30.0  # seconds new children get to start serving at a reload
_RESPAWN_DELAY = 1.0


class _Stop(Exception):
    """SIGTERM/SIGINT reached the supervisor."""


def listen(host: str = "127.0.0.1", port: int = 8080, backlog: int = 1024) -> socket.socket:
    """Bind and return a listening TCP socket (port 0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def announce(sock: socket.socket, what: str = "serving") -> None:
    """Print the address being served on stderr (the line tools and tests wait for)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"webmini: {what} on http://{shown}:{port} (pid {os.getpid()})",
          file=sys.stderr, flush=True)


def ready() -> None:
    """In a child: tell the supervisor this process serves now (no-op otherwise)."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is not None:
        try:
            os.write(int(fd), b"r")
            os.close(int(fd))
        except OSError:
            pass  # the supervisor was not waiting (a respawn)


def _child_command() -> list[str]:
    # sys.orig_argv keeps interpreter options (-m webmini.cli, -X ...).
    return [sys.executable, *sys.orig_argv[1:]]


class _Children:
    """The worker processes sharing one listening socket."""

    def __init__(self, sock: socket.socket, count: int, command: list[str]) -> None:
        self.sock = sock
        self.count = count
        self.command = command
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started: dict[int, float] = {}
        self.stop_grace = _STOP_GRACE
        self.stderr = _Tail()  # the last child's stderr (its traceback, when it died)
        self.ready_pipes: list[int] = []  # read ends: one per child not heard from yet

    def _spawn(self) -> subprocess.Popen[bytes]:
        fd = self.sock.fileno()
        read_end, write_end = os.pipe()
        env = dict(os.environ, **{LISTEN_FD_ENV: str(fd), WORKERS_ENV: str(self.count),
                                  READY_FD_ENV: str(write_end)})
        try:
            proc = subprocess.Popen(self.command, env=env, pass_fds=(fd, write_end),
                                    stderr=subprocess.PIPE)
        finally:
            os.close(write_end)
        self.started[proc.pid] = time.monotonic()
        self.ready_pipes.append(read_end)
        self.stderr = _Tail()
        threading.Thread(target=self.stderr.copy, args=(proc.stderr,), daemon=True).start()
        return proc

    def wait_ready(self, timeout: float = _READY_TIMEOUT) -> None:
        """Wait until every child started since the last call serves, or has exited."""
        import select

        deadline = time.monotonic() + timeout
        pending, self.ready_pipes = self.ready_pipes, []
        try:
            while pending and (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select(pending, [], [], left)
                for fd in readable:  # b"r": serving; EOF: exited
                    os.read(fd, 1)
                    pending.remove(fd)
                    os.close(fd)
        finally:
            for fd in pending:
                os.close(fd)

    def replace(self) -> None:
        """Start new children; stop the old ones once the new ones serve (or failed)."""
        self.wait_ready(0)  # the current children's pipes: not waited for again
        old, self.procs = self.procs, []
        self.start()
        self.wait_ready()
        self._stop(old)

    def start(self) -> None:
        """Start the missing children."""
        while len(self.procs) < self.count:
            self.procs.append(self._spawn())
        log.info("workers %s", " ".join(str(p.pid) for p in self.procs))

    def respawn_dead(self) -> bool:
        """Replace children that exited; return False if they keep dying at start."""
        healthy = True
        for i, proc in enumerate(self.procs):
            code = proc.poll()
            if code is None:
                continue
            lived = time.monotonic() - self.started.pop(proc.pid, 0.0)
            log.warning("worker %d exited with status %s after %.1f s", proc.pid, code, lived)
            if lived < _RESPAWN_DELAY:
                healthy = False
                time.sleep(_RESPAWN_DELAY)
            self.procs[i] = self._spawn()
        self.wait_ready(0)  # a respawn is not waited for: close its pipe
        return healthy

    def stop(self) -> None:
        """Stop every child: SIGTERM, then SIGKILL after a grace period."""
        self.wait_ready(0)  # closes the pipes of children not heard from
        self._stop(self.procs)
        self.procs = []

    def _stop(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + self.stop_grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def all_dead(self) -> bool:
        """Return True when no child is running."""
        return all(proc.poll() is not None for proc in self.procs)


class _Tail:
    """Copies a child's stderr to ours, keeping its last lines (a start-up traceback)."""

    keep = 200

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=self.keep)
        self.done = threading.Event()

    def copy(self, stream: Any) -> None:
        """Forward ``stream`` line by line until it closes."""
        try:
            for raw in iter(stream.readline, b""):
                sys.stderr.buffer.write(raw)
                sys.stderr.buffer.flush()
                self.lines.append(raw.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass
        finally:
            self.done.set()

    def text(self) -> str:
        """What the child wrote last (waits briefly for the pipe to drain)."""
        self.done.wait(2.0)
        return "".join(self.lines)


class _BrokenApp:
    """Answers on the listening socket while no child can import the application.

    Clients would otherwise wait in the backlog until the next good save: each
    gets a 500 at once, with the child's traceback in debug mode (a plain
    message otherwise), and the connection is closed.
    """

    def __init__(self, sock: socket.socket, traceback: str, debug: bool) -> None:
        self.sock = sock
        if debug:
            # SECURITY: the traceback (paths, source lines) only in debug mode.
            text = ("webmini: the application cannot be loaded; it is served again after "
                    "the next change that loads.\n\n" + traceback)
        else:
            text = ("The application failed to start; see the server's log. It is served "
                    "again after the next change that loads.\n")
        body = text.encode("utf-8", "replace")
        self.response = (
            b"HTTP/1.1 500 Internal Server Error\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"X-Content-Type-Options: nosniff\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n" + body
        )
        self.running = threading.Event()
        self.running.set()
        self.thread = threading.Thread(target=self._serve, name="webmini-broken-app", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready or not self.running.is_set():
                continue
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                continue  # a child (or another poller) took it
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        head = b""
        try:
            # Read the request head (bounded), so the client sees the answer, not a reset.
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                head += chunk
            conn.sendall(self.response)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        """Stop answering (within 0.1 s): children serve the socket again."""
        self.running.clear()
        self.thread.join(2.0)


def _changes(dirs: list[str]) -> Iterator[set[Any]]:
    with require("reload", "auto-reload"):
        from watchfiles import PythonFilter, watch
    # rust_timeout + yield_on_timeout: an empty set every 0.5 s lets the
    # supervisor check its children between file changes.
    return watch(*dirs, watch_filter=PythonFilter(), rust_timeout=500,
                 yield_on_timeout=True, raise_interrupt=True)


def supervise(
    sock: socket.socket,
    *,
    workers: int = 1,
    reload: bool = False,
    reload_dirs: list[str] | None = None,
    command: list[str] | None = None,
    stop_grace: float = _STOP_GRACE,
) -> None:
    """Run ``command`` (default: this command line) in ``workers`` children on ``sock``.

    Returns when SIGTERM or SIGINT arrives, after stopping the children
    (SIGKILL for a child still running ``stop_grace`` s after its SIGTERM).
    """
    children = _Children(sock, max(1, workers), command or _child_command())
    children.stop_grace = stop_grace

    def on_signal(signum: int, frame: Any) -> None:
        raise _Stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        children.start()
        if reload:
            dirs = reload_dirs or [os.getcwd()]
            log.info("watching %s for changes", ", ".join(dirs))
            broken: _BrokenApp | None = None
            for changed in _changes(dirs):
                if changed:
                    names = sorted({os.path.relpath(path) for _, path in changed})
                    log.warning("%s changed, restarting", ", ".join(names))
                    print(f"webmini: reloading ({', '.join(names)})", file=sys.stderr, flush=True)
                    if broken is not None:
                        broken.stop()
                        broken = None
                    children.replace()
                elif broken is None and children.all_dead():
                    # A broken edit: answer 500 until the next change, never let clients hang.
                    from webmini.config import config

                    log.error("the application cannot be loaded: answering 500 until the "
                              "next change")
                    broken = _BrokenApp(sock, children.stderr.text(), bool(config.get("debug")))
            if broken is not None:
                broken.stop()
        else:
            failures = 0
            while True:
                time.sleep(0.5)
                failures = 0 if children.respawn_dead() else failures + 1
                if failures >= 5:
                    log.error("workers keep exiting at start; giving up")
                    raise SystemExit(1)
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        children.stop()
        sock.close()
