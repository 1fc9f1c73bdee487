"""Guarding the gevent event loop: early patching, a blocking-module audit, a hub monitor.

One greenlet that does not yield stops every other request of the
process: a C database driver waiting on the network, or a handler that
computes for 300 ms. This module finds both: :func:`audit` names the
blocking C extensions loaded (with the pure-Python replacement to use),
:func:`start_monitor` logs which request and handler blocked the hub and
for how long (logger ``webmini.serving.green``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from types import FrameType, ModuleType
from typing import Any

from webmini._extras import gevent_patched, require
from webmini.config import config
from webmini.ctx import RequestContext

__all__ = [
    "Blocking",
    "LatePatchWarning",
    "audit",
    "is_patched",
    "late_patch_problems",
    "patch",
    "patch_fix",
    "start_monitor",
    "startup_check",
    "stop_monitor",
]

log = logging.getLogger(__name__)


def _gevent() -> Any:
    with require("gevent", "webmini.serving.green"):
        import gevent
    return gevent


# -- patching ----------------------------------------------------------------


class LatePatchWarning(RuntimeWarning):
    """gevent patching came after something that keeps unpatched objects."""


# Modules that, imported before patching, keep blocking sockets, locks or
# ssl objects (or are C drivers that patching cannot fix at all).
_IMPORT_AFTER_PATCH: dict[str, str] = {
    "ssl": "ssl was imported before patching: its SSLContext/SSLSocket classes stay unpatched",
    "MySQLdb": "MySQLdb (mysqlclient) is a C driver: it blocks the hub whatever the order",
    "psycopg2": "psycopg2 was imported before patching (it needs a green wait callback)",
    "pylibmc": "pylibmc is a C driver: it blocks the hub whatever the order",
    "memcache": "python-memcached was imported before patching: its Client keeps a real "
    "threading.local",
    "redis": "redis was imported before patching: its connections may keep unpatched "
    "sockets and locks",
    "urllib3": "urllib3 was imported before patching: its pools may keep unpatched locks",
    "requests": "requests was imported before patching: its pools may keep unpatched locks",
}

_patched_here = False


#: True when gevent has patched ``socket`` and ``threading`` in this process.
is_patched = gevent_patched


def late_patch_problems(modules: Mapping[str, Any] | None = None) -> list[str]:
    """Return why patching now would come too late (threads started, ssl or drivers imported)."""
    modules = sys.modules if modules is None else modules
    problems = []
    threading = modules.get("threading")
    if threading is not None:
        others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if others:
            problems.append(
                "threads were started before patching (" + ", ".join(sorted(others)) + "): "
                "their locks and the threading module state stay real"
            )
    problems.extend(why for name, why in _IMPORT_AFTER_PATCH.items() if name in modules)
    return problems


def patch() -> bool:
    """Monkey-patch the standard library for gevent, once; return True if this call patched.

    Call it first thing, before importing the application. Later calls, or a
    process already patched early (uWSGI ``gevent-early-monkey-patch``, a test
    runner), are no-ops. Patching after threads started or after ``ssl`` or
    a driver was imported is done anyway but warned about loudly (``warnings``
    and the ``webmini.serving.green`` logger).
    """
    global _patched_here
    if _patched_here:
        return False
    _gevent()
    from gevent import monkey

    _patched_here = True
    if is_patched():
        return False
    problems = late_patch_problems()
    monkey.patch_all()
    for why in problems:
        message = f"gevent patching came late: {why}; call webmini.serving.green.patch() first"
        log.warning(message)
        warnings.warn(message, LatePatchWarning, stacklevel=2)
    return True


# -- the audit -----------------------------------------------------------------


@dataclass(frozen=True)
class Blocking:
    """A loaded module that blocks the whole event loop, and what to use instead."""

    module: str
    package: str
    why: str
    use_instead: str

    def __str__(self) -> str:
        return f"{self.module} ({self.package}) blocks the event loop: {self.why}; " \
               f"use {self.use_instead}"


def _psycopg2_blocks(module: ModuleType) -> bool:
    extensions = getattr(module, "extensions", None)
    get_wait_callback = getattr(extensions, "get_wait_callback", None)
    return get_wait_callback is None or get_wait_callback() is None


def _zmq_blocks(module: ModuleType) -> bool:
    return "zmq.green" not in sys.modules


# module name -> (distribution, why, replacement, extra test: blocks only if it says so)
_BLOCKING_MODULES: dict[str, tuple[str, str, str, Callable[[ModuleType], bool] | None]] = {
    "MySQLdb": (
        "mysqlclient", "a C extension over libmariadb/libmysqlclient, every query waits "
        "on the network outside gevent", "pymysql through webmini.stores.mysql (pip install "
        "webmini[mysql])", None,
    ),
    "_mysql_connector": (
        "mysql-connector-python C extension", "its C calls wait on the network outside gevent",
        "pymysql through webmini.stores.mysql, or mysql.connector.connect(use_pure=True)", None,
    ),
    "pylibmc": (
        "pylibmc", "a C extension over libmemcached",
        "python-memcached through webmini.stores.cache "
        "(pip install webmini[memcache])", None,
    ),
    "psycopg2": (
        "psycopg2", "libpq calls block unless a green wait callback is set", "psycogreen "
        "(psycogreen.gevent.patch_psycopg() at start) or psycopg 3 in async mode",
        _psycopg2_blocks,
    ),
    "pymssql": ("pymssql", "a C extension over FreeTDS", "python-tds (pytds)", None),
    "pycurl": ("pycurl", "libcurl waits outside gevent", "urllib3 or requests", None),
    "ldap": ("python-ldap", "a C extension over libldap", "ldap3", None),
    "confluent_kafka": (
        "confluent-kafka", "librdkafka's poll() and flush() block", "kafka-python, or "
        "webmini.realtime.offload.offload(..., kind=\"thread\") around the blocking calls", None,
    ),
    "zmq": ("pyzmq", "blocking sends and receives", "import zmq.green as zmq", _zmq_blocks),
}


def audit(modules: Mapping[str, Any] | None = None) -> list[Blocking]:
    """Name the loaded modules that block the event loop, each with its replacement."""
    modules = sys.modules if modules is None else modules
    found = []
    for name, (package, why, instead, blocks) in _BLOCKING_MODULES.items():
        module = modules.get(name)
        if module is None:
            continue
        if blocks is not None and not blocks(module):
            continue
        found.append(Blocking(name, package, why, instead))
    return found


def startup_check(debug: bool | None = None) -> list[Blocking]:
    """Check a serving process once at start: patched? blocking modules? monitor in debug.

    Logs every finding through the ``webmini.serving.green`` logger and returns the
    audit. The hub monitor starts when ``debug`` (default
    ``webmini.config.debug``) is on, or when ``config.max_blocking_time`` is set.
    """
    if not is_patched():
        log.warning("gevent has not patched this process: blocking I/O stops every request "
                    "(requests are served one at a time per worker); %s", patch_fix())
    found = audit()
    for item in found:
        log.warning("%s", item)
    if debug is None:
        debug = bool(config.debug)
    threshold = config.get("max_blocking_time")
    if threshold or debug:
        start_monitor(float(threshold or 0.1))
    return found


def patch_fix() -> str:
    """Say how to serve this process patched, for the server it runs under."""
    if "uwsgi" in sys.modules:
        return ("serve with webmini's uwsgi.ini (`webmini config uwsgi > uwsgi.ini`): gevent "
                "workers, gevent-early-monkey-patch and lazy-apps patch before the app is imported")
    if "gunicorn" in sys.modules:
        return ("run `gunicorn -c python:webmini.serving.gunicorn_conf module:application`: "
                "gevent workers, patched before the app is imported")
    return ("start it with `webmini run module:app`, or call webmini.serving.green.patch() "
            "before anything else is imported")


# -- the hub monitor -----------------------------------------------------------


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # webmini/


@dataclass(frozen=True)
class _Blocker:
    """What the hub thread was doing when the block was seen."""

    request: str  # "GET /path" or "" outside a request
    handler: str  # "module.Class.GET" or "" when unknown
    where: str  # file:line of the innermost frame
    request_id: str = "-"  # that request's id (webmini.logs), for the log record

    def describe(self) -> str:
        parts = [self.request or "code outside a request"]
        if self.handler:
            parts.append(f"in {self.handler}")
        return " ".join(parts)


def _request_and_id(frame: FrameType) -> tuple[str, str]:
    # Read from another thread: only frames of webmini's own code are asked
    # for their locals, never the innermost (running) one.
    for value in frame.f_locals.values():
        env = None
        if isinstance(value, RequestContext):
            env = value.env
        elif isinstance(value, dict) and "REQUEST_METHOD" in value:
            env = value
        else:
            candidate = getattr(value, "environ", None)
            if isinstance(candidate, dict) and "REQUEST_METHOD" in candidate:
                env = candidate
        if env is not None:
            path = str(env.get("SCRIPT_NAME", "")) + str(env.get("PATH_INFO", ""))
            return f"{env.get('REQUEST_METHOD')} {path}", str(env.get("webmini.request_id", "-"))
    return "", "-"


def _qualname(frame: FrameType) -> str:
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    return f"{frame.f_globals.get('__name__', '?')}.{name}"


def describe_stack(frame: FrameType | None, gevent_dir: str = "") -> _Blocker:
    """Find the request, the handler and the location in a blocked thread's stack.

    The handler is where webmini's code called into the application: the
    handler method (``GET``, ``POST``...) when there is one, else the
    outermost such call (a plain WSGI callable, a processor).
    """
    frames: list[FrameType] = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    if not frames:
        return _Blocker("", "", "?")
    frames.reverse()  # outermost first
    request = ""
    rid = "-"
    calls: list[FrameType] = []  # frames webmini called into
    innermost = frames[-1]
    for i, f in enumerate(frames):
        filename = f.f_code.co_filename
        if filename.startswith(_PACKAGE_DIR):
            if not request and f is not innermost:
                request, rid = _request_and_id(f)
        elif (
            i > 0 and frames[i - 1].f_code.co_filename.startswith(_PACKAGE_DIR)
            and not (gevent_dir and filename.startswith(gevent_dir))
        ):
            calls.append(f)
    methods = [f for f in calls if f.f_code.co_name.isupper() and f.f_code.co_name.isalpha()]
    chosen = methods[0] if methods else (calls[0] if calls else None)
    handler = _qualname(chosen) if chosen is not None else ""
    where = f"{innermost.f_code.co_filename}:{innermost.f_lineno} ({innermost.f_code.co_name})"
    return _Blocker(request, handler, where, rid)


class _Monitor:
    """Names the request and handler that blocked the hub, through ``webmini.serving.green``.

    A native thread looks at the hub thread every half ``max_blocking_time``;
    gevent's own EventLoopBlocked events (when its monitor thread is on)
    trigger the same check. A block is confirmed on the hub thread's own
    state, not on greenlet switch counts (garbage-collected greenlets switch
    too, which hides real blocks and invents others): the loop has not woken
    up for ``max_blocking_time`` and the thread is not waiting inside the
    loop. The record is written by the hub thread once the loop is back, with
    the duration; a block still going on after ``still_blocking_after``
    seconds is also logged from the monitor thread, so that a greenlet that
    never yields is named.
    """

    still_blocking_after = 2.0

    def __init__(self, hub: Any, max_blocking_time: float) -> None:
        gevent = _gevent()
        from gevent import monkey
        from gevent.hub import Hub

        self.max_blocking_time = max_blocking_time
        self.hub_ref = weakref.ref(hub)
        self.pending_wake = -1.0  # loop wake-up time of the block being reported
        self.pending_said = False
        self.running = True
        self.gevent_dir = os.path.dirname(os.path.abspath(gevent.__file__)) + os.sep
        self.hub_run_code = Hub.run.__code__
        self._sleep = monkey.get_original("time", "sleep")
        self._started = monkey.get_original("_thread", "allocate_lock")()
        self._started.acquire()
        monkey.get_original("_thread", "start_new_thread")(self._run, ())
        # Return once the thread runs: a block right after start is then seen.
        self._started.acquire(True, 5.0)

    def _run(self) -> None:
        # The monitor thread: real sleeps, never touches the hub's greenlets.
        self._started.release()
        while self.running:
            self._sleep(self.max_blocking_time / 2)
            hub = self.hub_ref()
            if hub is None or not self.running:
                return
            # The monitor must outlive a stack it cannot read.
            with contextlib.suppress(Exception):
                self.check(hub)
            del hub

    def stop(self) -> None:
        """Stop the monitor thread (it exits after its current sleep)."""
        self.running = False

    def __call__(self, event: Any) -> None:
        """Handle a gevent event: EventLoopBlocked triggers a check."""
        from gevent.events import EventLoopBlocked

        hub = getattr(event, "hub", None)
        if isinstance(event, EventLoopBlocked) and hub is not None:
            self.check(hub)

    def check(self, hub: Any) -> None:
        """Report the hub as blocked if its loop has been away for too long."""
        frame = sys._current_frames().get(hub.thread_ident)
        if frame is None or frame.f_code is self.hub_run_code:
            return  # waiting in the loop (idle), not blocked
        try:
            # The loop's cached time is when it last woke up (a plain read of
            # a libev/libuv field, safe from this thread).
            wake = float(hub.loop.now())
        except Exception:  # pragma: no cover - a loop without now()
            return
        away = time.time() - wake
        if away < self.max_blocking_time:
            return
        if wake == self.pending_wake:  # the block already seen
            self._maybe_still_blocking(frame, away)
            return
        blocker = describe_stack(frame, self.gevent_dir)
        del frame
        self.pending_wake, self.pending_said = wake, False
        hub.loop.run_callback_threadsafe(self._ended, blocker, perf_counter() - away)

    def _maybe_still_blocking(self, frame: FrameType, away: float) -> None:
        if self.pending_said or away < self.still_blocking_after:
            return
        self.pending_said = True
        blocker = describe_stack(frame, self.gevent_dir)
        _log_for(blocker, "%s has been blocking the event loop for %.1f s, at %s",
                 blocker.describe(), away, blocker.where)

    def _ended(self, blocker: _Blocker, began: float) -> None:
        # Runs in the hub thread as soon as the loop gets control back.
        _log_for(blocker, "%s blocked the event loop for %.3f s (at %s)", blocker.describe(),
                 perf_counter() - began, blocker.where)


def _log_for(blocker: _Blocker, message: str, *args: Any) -> None:
    """Log a warning as part of the request that blocked (its id on the record)."""
    from webmini.logs import _request_id

    token = _request_id.set(blocker.request_id)
    try:
        log.warning(message, *args)
    finally:
        _request_id.reset(token)


_monitor: _Monitor | None = None


def start_monitor(max_blocking_time: float = 0.1) -> None:
    """Log every time the hub is kept for longer than ``max_blocking_time`` seconds.

    Each record names the request (method and path), the handler, where it
    was running and how long the loop was held. Call it once per process
    (after fork), from the thread that serves requests. Calling it again
    changes the threshold. The cost while nothing blocks: one look at the
    hub thread every ``max_blocking_time / 2`` seconds.
    """
    global _monitor
    gevent = _gevent()
    from gevent import events

    # gevent's own monitor thread, if enabled, uses the same threshold and its
    # EventLoopBlocked events are checked and reported the same way.
    gevent.config.max_blocking_time = max_blocking_time
    if _monitor is not None and _monitor.running:
        _monitor.max_blocking_time = max_blocking_time
        return
    _monitor = _Monitor(gevent.get_hub(), max_blocking_time)
    events.subscribers.append(_monitor)


def stop_monitor() -> None:
    """Stop the hub monitor started by :func:`start_monitor`."""
    global _monitor
    from gevent import events

    if _monitor is not None:
        _monitor.stop()
        if _monitor in events.subscribers:
            events.subscribers.remove(_monitor)
        _monitor = None
