"""Logging: one access-log line per request on every server, request ids, and a default setup.

* :class:`AccessLog` is WSGI middleware (``app.wsgifunc()`` applies it when
  ``web.config.access_log`` is on): it takes the request's ``X-Request-ID``
  (or makes one), sends it back on the response, and when the body is done
  writes one line on the ``webmini.access`` logger in
  ``web.config.access_log_format``. The same line under uWSGI, gunicorn and
  the dev server, because the app writes it, not the server.
* Every log record carries ``request_id`` and ``worker`` attributes, so a
  format can name them (``%(request_id)s``), whatever the logger.
* :func:`configure` sets up Python logging (time, level, pid, worker,
  request id) unless the application or the server configured it already.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from webmini.config import config

__all__ = [
    "ACCESS_FORMAT", "AccessLog", "LOG_FORMAT", "configure", "request_id", "worker_label",
    "write_access",
]

access_log = logging.getLogger("webmini.access")

# The format :func:`configure` gives the root logger.
LOG_FORMAT = (
    "%(asctime)s %(levelname)s [pid %(process)d worker %(worker)s] %(name)s: %(message)s"
    " [rid %(request_id)s]"
)
# Access lines carry the request id in their message already (``rid=``).
_ACCESS_LOG_FORMAT = LOG_FORMAT.removesuffix(" [rid %(request_id)s]")

# The default access line (str.format fields: client, method, path, status,
# bytes, duration_ms, request_id, user_agent, referer, protocol).
ACCESS_FORMAT = (
    '{client} "{method} {path} {protocol}" {status} {bytes} {duration_ms:.1f}ms '
    'rid={request_id} ua="{user_agent}"'
)

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "webmini_request_id", default="-"
)

# SECURITY: a client-sent id goes into every log line of its request: only
# short ids of visible, unquoted ASCII are taken (no CR/LF to forge log
# lines, no quotes or spaces to break a field); anything else is replaced.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# SECURITY: control characters, quotes and backslashes of request fields
# are escaped in access lines, so a path or User-Agent cannot forge a line.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\]')


def request_id() -> str:
    """Return the current request's id (``-`` outside a request)."""
    return _request_id.get()


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


def _escape(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _Fields(dict[str, Any]):
    """Access-log fields; an unknown name in a custom format prints as ``-``."""

    def __missing__(self, key: str) -> str:
        return "-"


class AccessLog:
    """WSGI middleware: request id in and out, one access-log line per request."""

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 header: str | None = None) -> None:
        self.app = app
        install_record_fields()
        name = header if header is not None else config.get("request_id_header", "X-Request-ID")
        self.header = name
        self.header_lower = name.lower()
        self.environ_key = "HTTP_" + name.upper().replace("-", "_")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Serve one request, tagged with its id; log it when the body is done."""
        if not config["access_log"] or "webmini.request_id" in environ:
            return self.app(environ, start_response)  # off, or an outer AccessLog has it
        start = time.perf_counter()
        rid = environ.get(self.environ_key)
        if rid is None or not _GOOD_ID.fullmatch(rid):
            # PERF: 128 random bits as hex, like uuid4().hex at a fifth of the cost.
            rid = os.urandom(16).hex()
        environ["webmini.request_id"] = rid
        token = _request_id.set(rid)
        state: dict[str, Any] = {"status": "-"}
        header = self.header
        lower = self.header_lower

        def tagged_start_response(status: str, headers: list[tuple[str, str]],
                                  exc_info: Any = None) -> Any:
            state["status"] = status
            for k, _ in headers:
                if k.lower() == lower:
                    break
            else:
                headers.append((header, rid))
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        try:
            result = self.app(environ, tagged_start_response)
        except BaseException:
            _request_id.reset(token)
            state["status"] = "500"
            self._log(environ, state, 0, start, rid)
            raise
        _request_id.reset(token)
        if environ.get("webmini.upgraded"):
            state["status"] = "101"
            self._log(environ, state, 0, start, rid)
            return result
        if type(result) is list:
            # PERF: a list body (the usual case) is counted now, not per chunk.
            return _ListBody(result, self, environ, state, start, rid)
        return _CountingBody(result, self, environ, state, start, rid)

    def _log(self, environ: dict[str, Any], state: dict[str, Any], sent: int,
             start: float, rid: str) -> None:
        write_access(environ, state["status"], sent, (time.perf_counter() - start) * 1000, rid)


def write_access(environ: dict[str, Any], status: Any, sent: int, duration_ms: float,
                 rid: str = "-") -> None:
    """Write one access line for a request (also used by the dev server for requests
    it answers itself, e.g. 408 or 431, and for apps that are not webmini's)."""
    if not config.get("access_log", True) or not access_log.isEnabledFor(logging.INFO):
        return
    # The mount point too: under a dispatcher at /api the line says /api/json.
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    if query:
        path += "?" + query
    fields = _Fields(
        client=environ.get("REMOTE_ADDR") or "-",
        method=_escape(environ.get("REQUEST_METHOD", "-")),
        path=_escape(path),
        status=str(status).split(" ", 1)[0],
        bytes=sent,
        duration_ms=duration_ms,
        request_id=rid,
        user_agent=_escape(environ.get("HTTP_USER_AGENT", "-")),
        referer=_escape(environ.get("HTTP_REFERER", "-")),
        protocol=environ.get("SERVER_PROTOCOL", "-"),
    )
    fmt = config.get("access_log_format") or ACCESS_FORMAT
    try:
        line = fmt.format_map(fields)
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        line = ACCESS_FORMAT.format_map(fields) + f" (bad access_log_format: {exc!r})"
    # PERF: the record is made here, not by access_log.info(): that walks the
    # stack to find the caller's file and line (meaningless for this line)
    # on every request. Filters, handlers and propagation work as usual.
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, line, (), None,
                                   extra={"access": fields})
    record.request_id = rid
    access_log.handle(record)


class _CountingBody:
    """The response body, counted as the server sends it; logs the request at close()."""

    __slots__ = ("result", "log", "environ", "state", "start", "rid", "sent", "done")

    def __init__(self, result: Any, log: AccessLog, environ: dict[str, Any],
                 state: dict[str, Any], start: float, rid: str) -> None:
        self.result = result
        self.log = log
        self.environ = environ
        self.state = state
        self.start = start
        self.rid = rid
        self.sent = 0
        self.done = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.result:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        """Close the wrapped body, then write the access line (once)."""
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            if not self.done:
                self.done = True
                self.log._log(self.environ, self.state, self.sent, self.start, self.rid)


class _ListBody(_CountingBody):
    """A list body: its size is known, iteration is the list's own."""

    __slots__ = ()

    def __init__(self, result: list[bytes], log: AccessLog, environ: dict[str, Any],
                 state: dict[str, Any], start: float, rid: str) -> None:
        super().__init__(result, log, environ, state, start, rid)
        self.sent = sum(map(len, result))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.result)


class _ContextFilter(logging.Filter):
    """Puts ``request_id`` and ``worker`` on every record that lacks them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
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
        record.request_id = _request_id.get()
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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    handler.addFilter(_FILTER)
    if force:
        for old in list(root.handlers):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if level is not None else config.get("log_level", "INFO"))
    return True
