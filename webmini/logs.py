"""Logging: one access-log line per request on every server, request ids, and a default setup.

* :class:`AccessLine` does it inside the application (``application._serve``: ``app.wsgifunc()``
  without middleware, ``web.config.access_log`` on); :class:`AccessLog` is the
  same as WSGI middleware, around other middleware or any WSGI app. It takes
  the request's ``X-Request-ID`` (or makes one), sends it back on the
  response, and when the body is done writes one line on the ``webmini.access`` logger in
  ``web.config.access_log_format``. The same line under uWSGI, gunicorn and
  the dev server, because the app writes it, not the server.
* Every log record carries ``request_id`` and ``worker`` attributes, so a
  format can name them (``%(request_id)s``), whatever the logger.
* :func:`configure` sets up Python logging (time, level, pid, worker,
  request id) unless the application or the server configured it already.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from webmini import accessformat
from webmini.accessformat import ACCESS_FORMAT
from webmini.config import config
from webmini.ctx import current_or_none

__all__ = [
    "ACCESS_FORMAT", "AccessLog", "FLUSH_INTERVAL", "FLUSH_LATE", "LOG_FORMAT", "configure",
    "flush", "request_id", "worker_label", "write_access",
]

access_log = logging.getLogger("webmini.access")

# The format :func:`configure` gives the root logger.
LOG_FORMAT = (
    "%(asctime)s %(levelname)s [pid %(process)d worker %(worker)s] %(name)s: %(message)s"
    " [rid %(request_id)s]"
)
# Access lines carry the request id in their message already (``rid=``).
_ACCESS_LOG_FORMAT = LOG_FORMAT.removesuffix(" [rid %(request_id)s]")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "webmini_request_id", default="-"
)
_set_rid = _request_id.set
_reset_rid = _request_id.reset

# SECURITY: a client-sent id goes into every log line of its request: only
# short ids of visible, unquoted ASCII are taken (no CR/LF to forge log
# lines, no quotes or spaces to break a field); anything else is replaced.
_good_id = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}").fullmatch


def request_id() -> str:
    """Return the current request's id (``-`` outside a request)."""
    rid = _request_id.get()
    if rid == "-":
        # A webmini application served the request itself (AccessLine): the
        # id is in its bound context's environ, no context variable of its own.
        c = current_or_none()
        if c is not None:
            return c.env.get("webmini.request_id", "-")  # type: ignore[no-any-return]
    return rid


_worker: tuple[int, str] = (0, "0")


def worker_label() -> str:
    """Return this process's worker number as a string (uWSGI's, gunicorn's, or ``0``)."""
    global _worker
    pid = os.getpid()
    if _worker[0] == pid:  # PERF: once per process, not per log record
        return _worker[1]
    from webmini.serving.uwsgi import worker_id

    label = str(worker_id())
    _worker = (pid, label)  # a fork (uWSGI master -> worker) changes the pid: asked again
    return label


class AccessLog:
    """WSGI middleware: request id in and out, one access-log line per request.

    The line is recorded as a tuple on the request's path and formatted and
    written later, in batches (:func:`flush`): every ``FLUSH_INTERVAL``
    seconds by a background thread (a greenlet once gevent patched), by the
    next request when that thread could not run for ``FLUSH_LATE`` seconds
    (a server without threads), and at exit.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 header: str | None = None) -> None:
        self.app = app
        install_record_fields()
        name = header if header is not None else config.get("request_id_header", "X-Request-ID")
        self.header = name
        self.header_lower = name.lower()
        self.environ_key = "HTTP_" + name.upper().replace("-", "_")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Serve one request, tagged with its id; record its line when the body is done."""
        if "webmini.request_id" in environ or not config["access_log"]:
            return self.app(environ, start_response)  # off, or an outer AccessLog has it
        line = AccessLine(environ, start_response, (self.header, self.environ_key))
        token = _set_rid(line.rid)  # any app: no webmini context to read the id from
        try:
            result = self.app(environ, line)
        except BaseException:
            line.failed()
            raise
        finally:
            _reset_rid(token)
        return line.close(result)


class AccessLine:
    """:class:`AccessLog`'s work for ``application._serve`` itself: no wrapper frame, no closure.

    Also the start_response of the application's general paths (status kept,
    request id header added); the common 200 goes through :meth:`send`.
    """

    __slots__ = ("environ", "start_response", "rid", "start", "status", "header")

    def __init__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ids: tuple[str, str]) -> None:
        self.start = _clock()
        self.environ = environ
        self.start_response = start_response
        rid = environ.get(ids[1])
        if rid is None or not _good_id(rid):
            rid = next(_ids)  # PERF: _new_id() inlined
        environ["webmini.request_id"] = rid
        self.rid = rid
        self.header = (ids[0], rid)
        self.status = "-"

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        """start_response: keep the status, add the request id header, call the server's."""
        self.status = status
        name = self.header[0]
        size = len(name)
        # PERF: the app's own X-Request-ID is rare: names compared only at its length.
        if not any(len(k) == size and k.lower() == name.lower() for k, _ in headers):
            headers.append(self.header)
        if exc_info is None:  # a server's start_response may take two arguments
            return self.start_response(status, headers)
        return self.start_response(status, headers, exc_info)

    def send(self, status: str, headers: list[tuple[str, str]], data: bytes) -> list[bytes]:
        """Start a one-chunk response (the common 200), record its line, return the body."""
        header = self.header
        name = header[0]
        size = len(name)
        # PERF: _tag() and _fields_of() inlined (the common request's path).
        for k, _ in headers:
            if len(k) == size and k.lower() == name.lower():
                break
        else:
            headers.append(header)
        self.start_response(status, headers)
        end = _clock()
        get = self.environ.get
        mount = get("SCRIPT_NAME")
        # PERF: _fields_of() inlined: one flat tuple, no call, no nested tuple.
        _pending.append((self.start, end, status, len(data), self.rid, get("REQUEST_METHOD", "-"),
                         mount + get("PATH_INFO", "") if mount else get("PATH_INFO", ""),
                         get("QUERY_STRING", ""), get("REMOTE_ADDR", "-"),
                         get("HTTP_USER_AGENT", "-"), get("HTTP_REFERER", "-"),
                         get("SERVER_PROTOCOL", "-")))
        if end > _due[0]:  # no flusher yet in this process, or it is late
            _kick(end)
        return [data]

    def close(self, result: Any) -> Any:
        """Record the line of the body ``result`` (now, or when a streamed one is closed)."""
        environ = self.environ
        if type(result) is list:
            sent = len(result[0]) if len(result) == 1 else sum(map(len, result))
        elif "webmini.upgraded" in environ:
            sent = 0  # a WebSocket took the connection
        else:
            return _CountingBody(result, environ, self._status, self.start, self.rid)
        status = "101" if "webmini.upgraded" in environ else self.status
        _record(environ, status, sent, self.start, self.rid)
        return result

    def _status(self) -> str:
        return self.status

    def failed(self) -> None:
        """Record a request the application raised out of (a 500, for the line)."""
        _record(self.environ, "500", 0, self.start, self.rid)


def access_line_ids(always: bool = False) -> tuple[str, str] | None:
    """(response header, environ key) of the request id when the access line is on, else None.

    ``always``: even when it is off now (each request checks the setting).
    """
    if not always and not config.get("access_log"):
        return None
    install_record_fields()
    name = config.get("request_id_header", "X-Request-ID")
    return name, "HTTP_" + name.upper().replace("-", "_")


def _fields_of(environ: dict[str, Any]) -> tuple[Any, ...]:
    # The environ values an access line shows, taken when the request ends
    # (a server may clear or reuse its environ dict after the request:
    # uWSGI does). The mount point too: under a dispatcher at /api the line
    # says /api/json. A missing field is "-" (an empty path or query "").
    get = environ.get
    path = get("PATH_INFO", "")
    mount = get("SCRIPT_NAME")
    if mount:
        path = mount + (path or "")
    return (get("REQUEST_METHOD", "-"), path, get("QUERY_STRING", ""), get("REMOTE_ADDR", "-"),
            get("HTTP_USER_AGENT", "-"), get("HTTP_REFERER", "-"), get("SERVER_PROTOCOL", "-"))


_clock = time.perf_counter


def _id_stream() -> Iterator[str]:
    """Request ids: 64 random bits per process, then a counter (32 hex digits in all)."""
    # PERF: a counter after a per-process random prefix, a third of
    # os.urandom(16).hex()'s cost (ids are for correlation, not secrets);
    # formatted by map() over the counter, in C: no Python frame per id.
    return map(f"{os.urandom(8).hex()}%016x".__mod__, itertools.count(1))


_ids = _id_stream()


def _reseed() -> None:
    # After a fork, each process gets its own prefix: ids stay unique across workers.
    global _ids
    _ids = _id_stream()
    _pending.clear()  # the parent's lines are the parent's to write
    _due[0] = 0.0  # the first request starts this process's flusher


def _new_id() -> str:
    """Return a new request id: unique, not secret (32 hex digits)."""
    return next(_ids)


#: Seconds between two batches of access lines written by the flusher.
FLUSH_INTERVAL = 0.2
#: Seconds after the last batch from which a request writes the waiting lines itself:
#: the flusher cannot run (a server without threads, a hub kept busy).
FLUSH_LATE = 1.0

# (start, end, status, bytes, request id, *_fields_of(environ)) of requests not yet written.
_pending: deque[tuple[Any, ...]] = deque()
# [t]: a request ending after perf_counter() t calls _kick(): 0 until this
# process's flusher runs (the first request starts it), then FLUSH_LATE
# after the last batch.
_due = [0.0]
_flusher_pid = 0

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def _record(environ: dict[str, Any], status: Any, sent: int, start: float, rid: str) -> None:
    end = _clock()
    _pending.append((start, end, status, sent, rid, *_fields_of(environ)))
    if end > _due[0]:
        _kick(end)


def _kick(now: float) -> None:
    """Start this process's flusher, or write the waiting lines now if it is late."""
    global _flusher_pid
    pid = os.getpid()
    if _flusher_pid != pid:
        _flusher_pid = pid
        _due[0] = now + FLUSH_LATE
        thread = threading.Thread(target=_flush_forever, name="webmini-access-log", daemon=True)
        thread.start()
        # A uWSGI worker runs Python's atexit functions only in some exits
        # (not when die-on-term stops it): uwsgi.atexit then, atexit elsewhere.
        from webmini.serving.uwsgi import at_exit  # a stdlib-only module

        at_exit(flush)
        return
    flush()


def _flush_forever() -> None:
    sleep = time.sleep  # gevent's once patched: the flusher is then a greenlet
    while True:
        sleep(FLUSH_INTERVAL)
        try:
            flush()
        except Exception:  # never let a bad handler kill the flusher
            logging.getLogger(__name__).exception("writing access lines failed")


def flush() -> None:
    """Write the access lines waiting in this process (the flusher and exit do it too)."""
    _due[0] = _clock() + FLUSH_LATE
    if not _pending:
        return
    batch = []
    popleft = _pending.popleft
    try:
        while True:
            batch.append(popleft())
    except IndexError:
        pass
    if not config.get("access_log", True):
        return
    offset = time.time() - _clock()  # perf_counter -> wall clock
    handler = _direct_handler()
    if handler is not None:
        text = _direct_lines(batch, offset)
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.flush()
        finally:
            handler.release()
        return
    for item in batch:
        _emit_record(item, offset)


def _emit_record(item: tuple[Any, ...], offset: float) -> None:
    """Hand one waiting line to Python logging (an app or test that set up its own handlers)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields = accessformat.fields(item)
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0,
                                   accessformat.message(fields), (), None,
                                   extra={"access": fields})
    created = item[1] + offset
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.request_id = item[4]
    access_log.handle(record)


_direct: logging.Handler | None = None  # the handler configure() installed


def _direct_handler() -> Any:
    """Return configure()'s handler when it alone would write access lines, else None."""
    handler = _direct
    if handler is None or logging.root.manager.disable >= logging.INFO:
        return None
    root = logging.getLogger()
    if root.handlers != [handler] or handler.level > logging.INFO or root.filters:
        return None
    logger: logging.Logger | None = access_log
    while logger is not None and logger is not root:
        if logger.handlers or logger.filters or not logger.propagate or logger.disabled:
            return None
        logger = logger.parent  # type: ignore[assignment]
    if not access_log.isEnabledFor(logging.INFO):
        return None
    if type(handler.formatter) is not _LineFormatter or handler.filters != [_FILTER]:
        return None
    return handler


def _direct_lines(batch: list[tuple[Any, ...]], offset: float) -> str:
    """The batch's access lines in configure()'s format, without LogRecords."""
    head = f" INFO [pid {os.getpid()} worker {worker_label()}] webmini.access: "
    if not config.get("access_log_format"):
        try:
            return accessformat.default_lines(batch, offset, head)
        except accessformat.NeedsCare:
            pass  # a field to escape, or a value of another type: line by line
    stamp_of, line_message = accessformat.stamp_of, accessformat.line_message
    return "".join([f"{stamp_of(item[1] + offset)}{head}{line_message(item)}\n"
                    for item in batch])


def write_access(environ: dict[str, Any], status: Any, sent: int, duration_ms: float,
                 rid: str = "-") -> None:
    """Write one access line for a request now (the dev server uses it for requests
    it answers itself, e.g. 408 or 431, and for apps that are not webmini's)."""
    if not config.get("access_log", True) or not access_log.isEnabledFor(logging.INFO):
        return
    end = _clock()
    item = (end - duration_ms / 1000, end, status, sent, rid, *_fields_of(environ))
    _emit_record(item, time.time() - end)


class _CountingBody:
    """A streamed response body, counted as the server sends it; recorded at close()."""

    __slots__ = ("result", "environ", "status", "start", "rid", "sent", "done")

    def __init__(self, result: Any, environ: dict[str, Any], status: Callable[[], str],
                 start: float, rid: str) -> None:
        self.result = result
        self.environ = environ
        self.status = status
        self.start = start
        self.rid = rid
        self.sent = 0
        self.done = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.result:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        """Close the wrapped body, then record the access line (once)."""
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            if not self.done:
                self.done = True
                _record(self.environ, self.status(), self.sent, self.start, self.rid)


class _ContextFilter(logging.Filter):
    """Puts ``request_id`` and ``worker`` on every record that lacks them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id()
        if not hasattr(record, "worker"):
            record.worker = worker_label()
        return True


_FILTER = _ContextFilter()
_installed = False


def install_record_fields() -> None:
    """Give every log record ``request_id`` and ``worker`` (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id()
        record.worker = worker_label()
        return record

    logging.setLogRecordFactory(factory)


class _LineFormatter(logging.Formatter):
    """LOG_FORMAT, without the trailing request id on access lines (their message has it)."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)
        self._access = logging.Formatter(_ACCESS_LOG_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record``: an access line with the access format, any other as usual."""
        if hasattr(record, "access"):
            return self._access.format(record)
        return super().format(record)


def configure(level: int | str | None = None, force: bool = False) -> bool:
    """Set up the root logger (stderr, :data:`LOG_FORMAT`) unless it has handlers already.

    Returns True when it did. ``web.config.log_level`` (default INFO) is the
    level; ``force=True`` replaces existing handlers. The application's own
    ``logging.basicConfig``/``dictConfig``, run at import, takes precedence.
    """
    install_record_fields()
    root = logging.getLogger()
    if root.handlers and not force:
        return False
    # PERF: records skip threading.current_thread(): under gevent each greenlet
    # that logs would get a fresh DummyThread object (about 8 of an access
    # line's 20 us); thread names mean nothing for greenlets, and LOG_FORMAT
    # shows the pid, worker and request id instead.
    logging.logThreads = False
    global _direct
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    handler.addFilter(_FILTER)
    _direct = handler
    if force:
        for old in list(root.handlers):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if level is not None else config.get("log_level", "INFO"))
    return True
