"""gunicorn's gevent worker, made to serve webmini like uWSGI does.

``gunicorn -c python:webmini.serving.gunicorn_conf myapp:application`` (the
config selects this worker). On top of ``gunicorn -k gevent`` it:

* hands the connection over to a WebSocket after its 101: gunicorn's
  gevent worker (``-k gevent``) parses HTTP itself, not with
  ``gevent.pywsgi``; the environ carries the socket (``gunicorn.socket``),
  and a request whose connection a WebSocket took answers gunicorn with
  ``ALREADY_HANDLED``, so gunicorn writes nothing more to it;
* runs webmini's start-up check (patched? blocking C drivers loaded? the
  hub monitor in debug) in every worker once the app is loaded;
* keeps a stop signal that arrives while it boots: until gunicorn installs
  the worker's handlers, SIGTERM/SIGINT/SIGQUIT go to the master's handler
  copied by the fork and are lost, so a stop right after a start (or during
  a respawn) waited ``graceful_timeout`` (30 s) for that worker's SIGKILL.
  They are held from the start of ``init_process`` (before gevent patches,
  the slow part) until the worker's own handlers are in;
* hands over on a reload: gunicorn's HUP starts new workers and at once
  sends SIGTERM to the old ones, which stop accepting while the new ones
  still import the app (measured: 2.9 s without any answer, 4 workers). An
  old worker here keeps accepting until every younger sibling (started
  after it) has loaded the app (at most ``graceful_timeout`` seconds) and one
  second more (their first requests open their pools), then stops accepting
  and finishes its requests. A plain stop (no younger sibling) stops
  accepting at once.

gunicorn patches each worker with gevent after the fork and before the app
is imported (``preload_app`` stays off), the equivalent of uWSGI's
``gevent-early-monkey-patch`` with ``lazy-apps``.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from gunicorn.workers.base_async import ALREADY_HANDLED
    from gunicorn.workers.ggevent import GeventWorker as _GunicornGeventWorker
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    if exc.name not in ("gunicorn", "packaging"):
        raise
    raise ImportError(f"webmini.serving.gunicorn needs {exc.name}: "
                      "pip install webmini[gunicorn]") from None

__all__ = ["GeventWorker", "remove_ready_dir"]

_HANDOVER_POLL = 0.05  # seconds between looks at the younger siblings
_HANDOVER_OVERLAP = 1.0  # seconds an old worker still accepts once the new ones are ready
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


def _start_time(pid: int) -> int:
    """Process start time in clock ticks since boot (/proc/<pid>/stat field 22); 0 if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def _children(pid: int) -> set[int]:
    """Live children of ``pid`` (Linux /proc); empty when the kernel does not list them."""
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _is_ready(directory: Path, pid: int) -> bool:
    """True when worker ``pid`` (this very process, not an earlier one) has loaded the app."""
    try:
        return (directory / str(pid)).read_text() == str(_start_time(pid))
    except OSError:
        return False


def remove_ready_dir(master: int) -> None:
    """Remove the ready marks of master ``master`` (when it exits)."""
    import shutil

    shutil.rmtree(Path(tempfile.gettempdir()) / f"webmini-gunicorn-{os.getuid()}-{master}",
                  ignore_errors=True)


def _ready_dir(master: int) -> Path:
    """The directory where this master's workers mark themselves ready (owner-only)."""
    path = Path(tempfile.gettempdir()) / f"webmini-gunicorn-{os.getuid()}-{master}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    # SECURITY: another user's (or a symlinked) directory could fake readiness.
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or path.is_symlink():
        raise RuntimeError(f"{path} is not a private directory of this user")
    return path


class GeventWorker(_GunicornGeventWorker):  # type: ignore[misc]
    """``gunicorn -k gevent`` plus WebSocket hand-over and webmini's start-up check."""

    def is_already_handled(self, respiter: Any) -> bool:
        """End the connection's request loop once a WebSocket took it over.

        gunicorn's keep-alive loop ignores handle_request's result and would
        go on parsing (stealing) the WebSocket's frames; StopIteration is the
        way out it provides: the worker then closes its descriptor only.
        """
        if respiter is ALREADY_HANDLED:
            raise StopIteration
        return False

    def init_process(self) -> None:
        """Hold the stop signals from here (gevent's patching, the hub) to :meth:`init_signals`."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        super().init_process()

    def init_signals(self) -> None:
        """gunicorn's worker handlers, then the stop signals held since the fork are delivered."""
        super().init_signals()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def load_wsgi(self) -> None:
        """Load the app, then wrap it so upgraded connections are left alone."""
        super().load_wsgi()
        app: Any = getattr(self, "wsgi")  # noqa: B009 - set by gunicorn, untyped

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            environ["webmini.gunicorn"] = True
            result = app(environ, start_response)
            if environ.get("webmini.upgraded"):
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                return ALREADY_HANDLED
            return result

        self.wsgi = wsgi
        from webmini import logs
        from webmini.serving.green import startup_check

        logs.configure()  # root logging with time, level, pid, worker; unless the app did

        startup_check()
        try:
            # The start time too: a stale file of a reused pid does not count.
            (_ready_dir(self.ppid) / str(os.getpid())).write_text(str(_start_time(os.getpid())))
        except (OSError, RuntimeError) as e:
            self.log.warning("webmini: no reload hand-over: %s", e)
        self.log.info("webmini: worker %s (pid %d) ready",
                      os.environ.get("WEBMINI_WORKER_ID", "?"), os.getpid())

    def handle_exit(self, sig: Any, frame: Any) -> None:
        """SIGTERM: stop accepting once the workers replacing this one are ready."""
        import gevent

        gevent.spawn(self._hand_over)

    def _hand_over(self) -> None:
        import gevent

        me = _start_time(os.getpid())
        deadline = time.monotonic() + self.cfg.graceful_timeout
        try:
            ready = _ready_dir(self.ppid)
        except (OSError, RuntimeError):
            self.alive = False
            return
        while time.monotonic() < deadline:
            younger = {p for p in _children(self.ppid) if _start_time(p) > me}
            if not younger:
                break
            if all(_is_ready(ready, p) for p in younger):
                # Serve along the new workers a moment: their first requests
                # open their pools (connects) while this one still accepts.
                gevent.sleep(_HANDOVER_OVERLAP)
                break
            gevent.sleep(_HANDOVER_POLL)
        self.alive = False  # gunicorn's loop stops accepting, then finishes the requests
        (ready / str(os.getpid())).unlink(missing_ok=True)
