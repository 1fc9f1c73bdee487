"""The dev server's connection handling on ``gevent.pywsgi``: keep-alive, timeouts, limits.

``gevent.pywsgi`` alone leaves three holes this module closes: it does not
set ``TCP_NODELAY`` (a keep-alive client then waits ~40 ms per request:
Nagle + delayed ACK), it has no idle or header-read timeout (a slowloris
client holds a greenlet forever), and it has no total header-size limit.
Request heads are validated strictly (:mod:`webmini.serving.strict`), and
SIGTERM stops gracefully (:meth:`DevServer.graceful_stop`).

Import it through :mod:`webmini.serving.devserver`, whose functions patch
the standard library for gevent first (``gevent.pywsgi`` pulls in
``http.client`` and ``ssl``, which must come after patching).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

from webmini._extras import require
from webmini.config import config
from webmini.serving.strict import BadRequestHead, check_head

with require("gevent", "the webmini dev server"):
    import gevent
    import gevent.event
    from gevent.pool import Pool
    from gevent.pywsgi import MAX_REQUEST_LINE, WSGIHandler, WSGIServer

__all__ = ["DevHandler", "DevServer", "HeaderTimeout", "HeadersTooLarge", "MAX_HEADER_FIELDS"]

#: Most header fields in one request head (431 beyond), as ``http.client``.
MAX_HEADER_FIELDS = 100

access_log = logging.getLogger("webmini.access")
# The dev server's log, whichever of its modules writes.
log = logging.getLogger("webmini.serving.devserver")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _response(status: str, body: bytes = b"") -> bytes:
    content_type = "text/plain"
    if config.get("error_format") == "json":  # the app's error format, before any app code
        from webmini.problem import PROBLEM_JSON, problem

        content_type, body = PROBLEM_JSON, json.dumps(problem(status)).encode()
    return (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1") + body


def _timeout_response() -> bytes:
    return _response("408 Request Timeout", b"Request Timeout\n")


def _bad_request_response() -> bytes:
    return _response("400 Bad Request", b"Bad Request\n")


def _too_large_response() -> bytes:
    return _response("431 Request Header Fields Too Large", b"Request Header Fields Too Large\n")


class HeaderTimeout(Exception):
    """The client took longer than ``header_timeout`` to send its request line and headers."""


class HeadersTooLarge(Exception):
    """The request line and headers exceed ``config.max_header_size``."""


class _BoundedReader:
    """A ``readline`` source that raises HeadersTooLarge past a byte budget."""

    __slots__ = ("fp", "remaining")

    def __init__(self, fp: Any, budget: int) -> None:
        self.fp = fp
        self.remaining = budget

    def readline(self, size: int = -1) -> bytes:
        """Read one header line, never more than the budget left plus one byte."""
        limit = self.remaining + 1
        if 0 <= size < limit:
            limit = size
        line: bytes = self.fp.readline(limit)
        self.remaining -= len(line)
        if self.remaining < 0:
            # SECURITY: bounds the memory one request's headers can take.
            raise HeadersTooLarge()
        return line


class DevHandler(WSGIHandler):
    """A ``pywsgi`` handler with TCP_NODELAY, idle/header/read timeouts and a header limit.

    It publishes itself as ``environ["webmini.pywsgi_handler"]``; when the
    application returns with ``environ["webmini.upgraded"]`` true (a WebSocket
    took the connection over), nothing more is read or written here.
    """

    server: DevServer
    socket: Any  # None once a WebSocket took the connection over
    _orig_status: str | None
    close_connection: bool
    _timer: Any = None
    _header_lines: list[bytes] = []
    _had_request = False  # a request was read on this connection: waits after it are idle

    def __init__(self, sock: Any, address: Any, server: DevServer, rfile: Any = None) -> None:
        # PERF: without TCP_NODELAY the body write after the header write waits
        # for the client's delayed ACK: ~40 ms per keep-alive request.
        with contextlib.suppress(OSError):  # not TCP (a UNIX socket)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, address, server, rfile)

    # -- reading the request ------------------------------------------

    def read_requestline(self) -> str:
        """Wait at most ``keepalive_timeout`` for a request, then bound the header read."""
        server = self.server
        # SECURITY: an idle keep-alive connection is closed after keepalive_timeout.
        self.socket.settimeout(server.keepalive_timeout)
        if self._had_request:
            if server.stopping:
                return ""  # shutting down: no further request on this connection
            me = gevent.getcurrent()
            server.idle.add(me)  # a graceful stop may end this wait: no request is lost
            try:
                self.rfile.peek(1)  # raises TimeoutError (an OSError): the connection is closed
            finally:
                server.idle.discard(me)
        else:
            # A new connection is not idle: the server accepted it, so its
            # first request is served even when a stop began meanwhile (a
            # reload or a restart must not close it unanswered).
            self.rfile.peek(1)
            self._had_request = True
        timer = self._timer
        if timer is None:
            timer = self._timer = gevent.Timeout(server.header_timeout, HeaderTimeout)
        # SECURITY: the whole request line + headers must arrive within
        # header_timeout, however slowly the bytes trickle in (slowloris).
        timer.start()
        line: bytes = self.rfile.readline(MAX_REQUEST_LINE)
        return line.decode("latin-1")

    def MessageClass(self, fp: Any, *args: Any) -> Any:  # noqa: N802 - pywsgi's name
        """Parse the header lines :meth:`read_request` already read and validated."""
        return super().MessageClass(io.BytesIO(b"".join(self._header_lines)), *args)

    def read_request(self, raw_requestline: str) -> bool:
        """Read the head within the limits, validate it strictly, then let pywsgi parse it.

        Once the headers are in, the body read timeout applies.
        """
        if len(raw_requestline.split()) != 3:
            # No headers to wait for: HTTP/0.9 and broken request lines end here.
            raise BadRequestHead(f"malformed request line {raw_requestline.rstrip()!r}")
        self._header_lines = self._read_header_lines(raw_requestline)
        head = raw_requestline.encode("latin-1") + b"".join(self._header_lines)
        check_head(head)  # BadRequestHead: 400 and close
        ok: bool = super().read_request(raw_requestline)
        self._header_lines = []
        self._cancel_timer()
        self.socket.settimeout(self.server.read_timeout)
        return ok

    def _read_header_lines(self, requestline: str) -> list[bytes]:
        """The raw header lines up to and including the empty one (431 past the limits)."""
        reader = _BoundedReader(self.rfile, self.server.max_header_size - len(requestline))
        lines: list[bytes] = []
        while True:
            line = reader.readline()
            lines.append(line)
            if line in (b"\r\n", b"\n"):
                return lines
            if not line:
                raise BadRequestHead("connection closed inside the request head")
            if len(lines) > MAX_HEADER_FIELDS:
                # SECURITY: bounds the work one request head costs.
                raise HeadersTooLarge()

    def handle_one_request(self) -> Any:
        """Serve one request; a header timeout during the request line answers 408."""
        try:
            return super().handle_one_request()
        except HeaderTimeout:
            self._client_cut_off("timed out sending the request line")
            return ("408", _timeout_response())
        finally:
            self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _handle_client_error(self, ex: BaseException) -> Any:
        if isinstance(ex, HeaderTimeout):
            self._client_cut_off("timed out sending headers")
            return ("408", _timeout_response())
        if isinstance(ex, HeadersTooLarge):
            self._client_cut_off(
                f"headers larger than {self.server.max_header_size} bytes"
                f" or more than {MAX_HEADER_FIELDS} fields")
            return ("431", _too_large_response())
        if isinstance(ex, BadRequestHead):
            self._client_cut_off(str(ex))
            return ("400", _bad_request_response())
        return super()._handle_client_error(ex)

    def _client_cut_off(self, why: str) -> None:
        log.warning("closing connection from %s: %s", self._client_ip(), why)

    def _client_ip(self) -> str:
        address = self.client_address
        return str(address[0]) if isinstance(address, tuple) else str(address or "-")

    # -- running the application ----------------------------------------

    def finalize_headers(self) -> None:
        """Add ``Connection: close`` to a response finished while the server stops."""
        if self.server.stopping and not self.close_connection:
            self.close_connection = True
            self.response_headers.append((b"Connection", b"close"))
        super().finalize_headers()

    def get_environ(self) -> dict[str, Any]:
        """Build the WSGI environ; it carries this handler for WebSocket upgrades."""
        env: dict[str, Any] = super().get_environ()
        env["webmini.pywsgi_handler"] = self
        return env

    def run_application(self) -> None:
        """Call the application and write its result, unless a WebSocket took the socket."""
        env = self.environ
        try:
            self.result = self.application(env, self.start_response)
            if env.get("webmini.upgraded"):
                # The WebSocket layer owns the connection now, on a descriptor
                # of its own: close ours without pywsgi's drain-then-close,
                # which would eat the client's first frames.
                self.close_connection = True
                sock, self.socket = self.socket, None
                self.rfile.close()  # the descriptor closes with its last user
                sock.close()
                if self._orig_status is None:
                    self._orig_status = "101"
                return
            self.process_result()
        finally:
            if getattr(self.wsgi_input, "_chunked_input_error", False):
                # SECURITY: after a malformed chunked body the stream is out of
                # step: never parse what follows as another request.
                self.close_connection = True
            close = getattr(self.result, "close", None)
            self.result = None
            if close is not None:
                close()

    def handle_error(self, t: Any, v: Any, tb: Any) -> None:
        """Log an exception that escaped the application; answer 500 (debug page if on)."""
        if t is not None and issubclass(t, gevent.GreenletExit):
            return
        env = self.environ or {}
        log.error(
            "unhandled error in %s %s", env.get("REQUEST_METHOD"), env.get("PATH_INFO"),
            exc_info=(t, v, tb),
        )
        if not config.debug or self.response_length or self.headers_sent:
            self._send_error_response_if_possible(500)
            return
        from webmini.serving.debugpage import render

        body = render((t, v, tb), env).encode("utf-8")
        self.close_connection = True
        try:
            self.start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/html; charset=utf-8"),
                 ("X-Content-Type-Options", "nosniff"),
                 ("Content-Length", str(len(body))), ("Connection", "close")],
            )
            self.write(body)
        except OSError:
            pass

    def log_request(self) -> None:
        """Write the access line of a request the app did not log itself (same format)."""
        env = self.environ or {}
        if "webmini.request_id" in env or not access_log.isEnabledFor(logging.INFO):
            return  # webmini's AccessLog (app.wsgifunc()) wrote it
        from webmini.logs import write_access

        if not env:  # refused before an environ existed (408, 431, bad request line)
            method, _, rest = (self.requestline or "-").partition(" ")
            env = {"REQUEST_METHOD": method, "PATH_INFO": rest.rpartition(" ")[0] or rest,
                   "REMOTE_ADDR": self._client_ip()}
        finish: float = self.time_finish
        took = (finish - self.time_start) * 1000 if finish else 0.0
        write_access(env, self._orig_status or "000", self.response_length or 0, took)


class DevServer(WSGIServer):
    """``gevent.pywsgi.WSGIServer`` with :class:`DevHandler` and its limits."""

    handler_class = DevHandler

    def __init__(
        self,
        listener: Any,
        application: WSGIApp,
        *,
        pool_size: int = 1000,
        keepalive_timeout: float = 5.0,
        header_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_header_size: int | None = None,
        graceful_timeout: float = 10.0,
        environ: dict[str, Any] | None = None,
    ) -> None:
        self.stopping = False
        # Greenlets waiting for a keep-alive connection's next request.
        self.idle: set[Any] = set()
        self.graceful_timeout = graceful_timeout
        self.keepalive_timeout = keepalive_timeout
        self.header_timeout = header_timeout
        self.read_timeout = read_timeout
        self.max_header_size = (
            max_header_size if max_header_size is not None else int(config.max_header_size)
        )
        # SECURITY: a bounded pool: past pool_size connections the server
        # stops accepting instead of spawning without limit.
        super().__init__(
            listener, application, spawn=Pool(pool_size), log=None,
            error_log=log, environ=environ,
        )


    def graceful_stop(self, timeout: float | None = None) -> None:
        """Stop accepting, finish in-flight requests for at most ``timeout`` s, then stop.

        Idle keep-alive connections are closed at once; a request in flight
        gets its response (with ``Connection: close``) unless it outlives
        the grace period (``graceful_timeout`` by default), like uWSGI's
        ``worker-reload-mercy``.
        """
        grace = self.graceful_timeout if timeout is None else timeout
        self.stopping = True
        self.stop_accepting()
        self.close()  # the listening socket: new connections are refused from now on
        for greenlet in list(self.idle):
            greenlet.kill(block=False)
        pool = self.pool
        busy = len(pool) if pool is not None else 0
        if busy:
            log.info("stopping: waiting up to %.1f s for %d connection(s)", grace, busy)
            if pool is not None and not pool.join(timeout=grace):
                log.warning("stopping: %d request(s) cut off after %.1f s", len(pool), grace)
        if pool is not None:
            pool.kill(block=True, timeout=1)
