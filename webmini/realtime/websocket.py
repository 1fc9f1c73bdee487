"""WebSocket handlers: ``class Chat(web.WebSocket)`` served by uWSGI + gevent or the dev server.

A handler class is routed like any other; its ``GET`` answers the opening
handshake, calls ``on_open`` and returns::

    class Chat(web.WebSocket):
        def on_open(self): self.join("room")
        def on_message(self, data): self.broadcast("room", data)
        def on_close(self, code, reason): ...

From then on webmini owns the connection, not the server: a non-blocking
socket (a duplicate of the server's descriptor) that the event loop
watches. The request itself is over, so an idle connection holds no
greenlet, no server request slot (uWSGI async core) and no request buffer:
under 1 KB of Python objects plus the kernel's socket. When data arrives,
a short-lived greenlet reads it and calls ``on_message`` for each message,
in order, with ``webmini.ctx`` set to the request that opened the
connection. Writes never block and never yield, so ``send``, ``close`` and
``broadcast`` work from any greenlet: a frame goes to the socket at once,
or behind the frames already waiting for it.

Events are ``on_open``/``on_message``/``on_close``; actions are ``send``,
``close``, ``join``, ``leave`` and ``broadcast``.

This module is the handler class; the opening handshake's checks (Origin,
key, subprotocol) live in ``ws_handshake``, the process's connections,
groups, broadcast, fan-out and deadline ticker in ``ws_groups``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from itertools import islice
from typing import Any

from webmini._extras import require

with require("websocket", "webmini.WebSocket"):
    import gevent
    from wsproto.connection import Connection, ConnectionState, ConnectionType
    from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from webmini.ctx import RequestContext, bind, current
from webmini.realtime.ws_groups import (
    GOING_AWAY,
    broadcast,
    close_all,
    connections,
    group_size,
    registry,
    set_fanout,
)
from webmini.realtime.ws_handshake import (
    ENVIRON_KEEP,
    _check_handshake,
    _check_origin,
    _choose_subprotocol,
    _kept_environ,
)
from webmini.reporting import unhandled
from webmini.serving.ws_backends import accept

__all__ = [
    "ENVIRON_KEEP", "WebSocket", "broadcast", "close_all", "connections", "group_size",
    "set_fanout",
    "NORMAL", "GOING_AWAY", "PROTOCOL_ERROR", "ABNORMAL", "POLICY_VIOLATION", "TOO_BIG",
    "INTERNAL_ERROR",
]

log = logging.getLogger(__name__)

# Close codes (RFC 6455 section 7.4.1).
NORMAL = 1000
PROTOCOL_ERROR = 1002
ABNORMAL = 1006  # never sent: the connection was lost without a close frame
POLICY_VIOLATION = 1008
TOO_BIG = 1009
INTERNAL_ERROR = 1011

_READ_SIZE = 65536
_NEVER = float("inf")
_READ, _WRITE = 1, 2  # libev event masks
_IOV_MAX = 64  # buffers handed to one sendmsg()


class WebSocket:
    """Base class of WebSocket handlers; override the ``on_*`` events."""

    # No per-request time limit: the request ends with the handshake and on_open.
    timeout: float | None = 0
    #: Origins allowed besides the page's own (``("*",)`` allows any).
    origins: Iterable[str] = ()
    #: Subprotocols this handler speaks, in order of preference.
    subprotocols: Iterable[str] = ()
    #: Largest message accepted, in bytes; a bigger one is closed with 1009.
    max_message_size: int = 1 << 20
    #: Seconds between pings (None: never ping) and to wait for the pong.
    ping_interval: float | None = 20.0
    ping_timeout: float = 20.0
    #: Seconds to wait for the peer's answer to our close frame.
    close_timeout: float = 5.0
    #: Frames waiting for a slow peer before it is dropped (code 1008).
    max_queue: int = 4096
    #: Bytes waiting for a slow peer before it is dropped (code 1008); at
    #: least ``max_message_size`` so one whole message can always wait.
    max_queue_bytes: int = 4 << 20
    #: The ``ctx.env`` keys kept once ``on_open`` has returned (None: :data:`ENVIRON_KEEP`).
    environ_keep: frozenset[str] | None = None

    # Set by GET for the life of the connection.
    args: tuple[str, ...]
    subprotocol: str | None
    close_code: int | None
    close_reason: str
    _ctx: RequestContext | None
    _sock: Any  # ours (see webmini.serving.ws_backends); None once the connection is over
    _conn: Connection | None
    _reader: Any
    _writer: Any
    _outbox: deque[memoryview] | None
    _groups: tuple[str, ...]
    _parts: list[Any] | None

    # -- events (override) ----------------------------------------------

    def on_open(self) -> None:
        """Called once the connection is open, still inside the upgrade request."""

    def on_message(self, data: str | bytes) -> None:
        """Called with each complete message: ``str`` for text, ``bytes`` for binary."""

    def on_close(self, code: int, reason: str) -> None:
        """Called once when the connection is over (1006: lost without a close frame)."""

    # -- actions ----------------------------------------------------------

    def send(self, data: str | bytes) -> bool:
        """Send a text (``str``) or binary (``bytes``) message; False if no longer open."""
        if not self._is_open():
            return False
        # PERF: a finished message's frame does not depend on the connection
        # (server frames are unmasked, no extensions): no wsproto state needed.
        if isinstance(data, str):
            frame = registry.encoder.send_data(data, True)
        else:
            frame = registry.encoder.send_data(bytes(data), True)
        self._write(bytes(frame))
        return self._sock is not None

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the closing handshake with ``code`` and ``reason`` (from any greenlet)."""
        if not self._is_open():
            return
        self._send_close(code, reason)

    def join(self, group: str) -> None:
        """Add this connection to ``group`` (see :func:`broadcast`)."""
        if self._sock is None and self._opened:
            return  # already over: it would never be removed
        registry.join(self, group)
        if group not in self._groups:
            self._groups += (group,)

    def leave(self, group: str) -> None:
        """Remove this connection from ``group``."""
        registry.leave(self, group)
        if group in self._groups:
            self._groups = tuple(g for g in self._groups if g != group)

    @staticmethod
    def broadcast(group: str, data: str | bytes, exclude: WebSocket | None = None) -> int:
        """Send ``data`` to every member of ``group`` on every worker; see :func:`broadcast`."""
        return broadcast(group, data, exclude)

    # -- the upgrade ------------------------------------------------------

    def GET(self, *args: str) -> bytes:  # noqa: N802 - handler method names are HTTP verbs
        """Answer the opening handshake, call ``on_open``, and hand the connection to the loop."""
        c = current()
        env = c.env
        key = _check_handshake(env)
        _check_origin(env, self.origins)
        self.subprotocol = _choose_subprotocol(env, self.subprotocols)
        self.args = args
        sock, pending = accept(env, key, self.subprotocol)
        env["webmini.upgraded"] = True
        # The server's environ is released with the request; the connection
        # keeps a small copy for ctx.env (see ENVIRON_KEEP).
        self._ctx = c
        self._sock = sock
        self._opened = True
        if self.ping_interval:
            self._next_ping = time.monotonic() + self.ping_interval
        registry.add(self)
        self._busy = True
        try:
            self._call(self.on_open)
            c.env = c.environ = _kept_environ(env, self.environ_keep or ENVIRON_KEEP)
            if pending and self._sock is not None:
                self._receive(pending)
        finally:
            self._busy = False
        self._resume()
        # The response went out as the 101 handshake; nothing follows it.
        return b""

    # PERF: per-connection state lives in slots, and what an idle connection
    # does not need (the wsproto parser, the outbox, fragment buffers, a
    # write watcher) is created only when used: 10,000 idle connections add up.
    __slots__ = (
        "args", "subprotocol", "close_code", "close_reason",
        "_ctx", "_sock", "_opened", "_busy", "_reported", "_conn", "_reader", "_writer",
        "_outbox", "_queued", "_groups", "_parts", "_size", "_linger", "_closing_deadline",
        "_next_ping", "_pong_deadline",
    )

    def __init__(self) -> None:
        self.args = ()
        self.subprotocol = None
        self.close_code = None
        self.close_reason = ""
        # Until GET has upgraded the connection (or after a failed upgrade)
        # send() and close() are harmless no-ops.
        self._ctx = None
        self._sock = None
        self._opened = False
        self._busy = False  # a greenlet of ours is running this connection's events
        self._reported = False  # on_close has been called (or scheduled)
        self._conn = None  # the wsproto parser, made when first needed
        self._reader = None
        self._writer = None
        self._outbox = None
        self._queued = 0  # bytes in the outbox
        self._groups = ()
        self._parts = None
        self._size = 0
        self._linger = False  # close the socket once the outbox is flushed
        self._closing_deadline = 0.0
        self._next_ping = _NEVER
        self._pong_deadline = _NEVER

    # -- state ------------------------------------------------------------

    def _is_open(self) -> bool:
        if self._sock is None or self._closing_deadline or self._linger:
            return False
        conn = self._conn
        return conn is None or conn.state is ConnectionState.OPEN

    def _protocol(self) -> Connection:
        conn = self._conn
        if conn is None:
            conn = self._conn = Connection(ConnectionType.SERVER)
        return conn

    # -- reading: the loop calls _on_readable; a greenlet does the rest ----

    def _resume(self) -> None:
        """Watch the socket again, or report the end if the connection is over."""
        sock = self._sock
        if sock is None:
            self._report_closed()
            return
        reader = self._reader
        if reader is None:
            reader = self._reader = gevent.get_hub().loop.io(sock.fileno(), _READ)
        # One-shot: the watcher stays off while a greenlet handles what came,
        # so a busy on_message pushes back on the peer through TCP.
        reader.start(self._on_readable)

    def _on_readable(self) -> None:
        # Runs in the event loop: no user code here, only the hand-over.
        self._reader.stop()
        if not self._busy:
            self._busy = True
            gevent.spawn_raw(self._read_burst)

    def _read_burst(self) -> None:
        bind(self._ctx)  # type: ignore[arg-type]
        try:
            # One read per wake-up: a peer that never stops sending gets one
            # turn per loop iteration, like everyone else.
            try:
                data = self._sock.recv(_READ_SIZE)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._drop()
            elif data:
                self._receive(data)
        except Exception:
            log.exception("websocket %s: error while reading", self._path())
            self._drop()
        finally:
            self._busy = False
        self._resume()

    def _receive(self, data: bytes) -> None:
        conn = self._protocol()
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                if self._is_open():
                    self._collect(event)
            elif isinstance(event, Ping):
                if conn.state is ConnectionState.OPEN:
                    self._write(conn.send(event.response()))
            elif isinstance(event, Pong):
                self._pong_deadline = _NEVER
                if self.ping_interval:
                    self._next_ping = time.monotonic() + self.ping_interval
            elif isinstance(event, CloseConnection):
                self._closed_by_peer(conn, event)
                return
            if self._sock is None:
                return

    def _closed_by_peer(self, conn: Connection, event: CloseConnection) -> None:
        if conn.state is ConnectionState.REMOTE_CLOSING:
            # The peer started the closing handshake: answer it, then hang up.
            self.close_code, self.close_reason = event.code, event.reason or ""
            self._write(conn.send(event.response()))
            self._hang_up()
        elif conn.state is ConnectionState.OPEN:
            # wsproto reports a protocol error (bad UTF-8, bad frame) this way.
            self._send_close(event.code, event.reason or "")
            self._hang_up()
        else:  # the answer to our own close frame
            self._hang_up()

    def _collect(self, event: TextMessage | BytesMessage) -> None:
        data = event.data
        self._size += len(data)
        # SECURITY: the size is checked as chunks arrive, before the message is
        # whole, so a peer announcing a huge frame cannot make us buffer it.
        if self._size > self.max_message_size:
            self._parts = None
            self._size = 0
            self._send_close(TOO_BIG, "message too big")
            return
        parts = self._parts
        if not event.message_finished:
            if parts is None:
                self._parts = [data]
            else:
                parts.append(data)
            return
        if parts:
            parts.append(data)
            message: Any = ("" if isinstance(data, str) else b"").join(parts)
            self._parts = None
        else:
            message = data if isinstance(data, str) else bytes(data)
        self._size = 0
        self._call(self.on_message, message)

    def _call(self, func: Any, *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            self._failed(func.__name__)
            self.close(INTERNAL_ERROR, "internal error")

    def _failed(self, event: str) -> None:
        """Log the exception being handled and give it to ``web.config.error_reporters``."""
        where = f"error in {type(self).__name__}.{event}"
        if self._ctx is None:
            log.exception("%s", where)
        else:
            unhandled(self._ctx, "websocket", where)

    # -- writing: never blocks, callable from any greenlet -----------------

    def _write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        outbox = self._outbox
        if outbox is not None:
            # Behind what the peer has not taken yet, in order.
            # SECURITY: bounded in bytes, not only frames: a member that never
            # reads must not make the worker hold every broadcast for it.
            size = len(data)
            if len(outbox) >= self.max_queue or self._queued + size > max(
                    self.max_queue_bytes, self.max_message_size + 16):
                log.info("websocket %s: peer too slow, dropping it", self._path())
                if self.close_code is None:
                    self.close_code, self.close_reason = POLICY_VIOLATION, "too slow"
                self._drop()
                return
            # PERF: a view, not a copy: a broadcast frame is shared by members.
            outbox.append(memoryview(data))
            self._queued += size
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop()
            return
        if sent < len(data):
            self._outbox = deque((memoryview(data)[sent:],))
            self._queued = len(data) - sent
            writer = self._writer
            if writer is None:
                writer = self._writer = gevent.get_hub().loop.io(sock.fileno(), _WRITE)
            writer.start(self._on_writable)

    def _on_writable(self) -> None:
        # Runs in the event loop: send what is queued, as much as the peer takes.
        outbox, sock = self._outbox, self._sock
        if not outbox or sock is None:
            self._writer.stop()
            return
        # PERF: the queued frames go out in one gathering sendmsg() from
        # their views: no join, no copy of the backlog.
        try:
            sent = sock.sendmsg(list(islice(outbox, _IOV_MAX)))
        except BlockingIOError:
            return
        except OSError:
            self._drop()
            return
        self._queued -= sent
        while sent:
            first = outbox[0]
            if len(first) > sent:
                outbox[0] = first[sent:]
                break
            sent -= len(first)
            outbox.popleft()
        if outbox:
            return
        self._outbox = None
        self._queued = 0
        self._writer.stop()
        if self._linger:
            self._drop()

    # -- closing ------------------------------------------------------------

    def _send_close(self, code: int, reason: str) -> None:
        conn = self._protocol()
        if conn.state is not ConnectionState.OPEN or self._sock is None:
            return
        self.close_code, self.close_reason = code, reason
        self._write(conn.send(CloseConnection(code=code, reason=reason or None)))
        # Wait (in the ticker) for the peer's answer, at most close_timeout.
        self._closing_deadline = time.monotonic() + self.close_timeout
        registry.start_ticker(self)

    def _hang_up(self) -> None:
        """Close the TCP connection once what is queued for the peer has gone out."""
        if self._outbox:
            self._linger = True
            if not self._closing_deadline:
                self._closing_deadline = time.monotonic() + self.close_timeout
                registry.start_ticker(self)
        else:
            self._drop()

    def _drop(self) -> None:
        """Forget the connection now: stop watching, close the socket, leave the groups."""
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        # The watchers stop before the descriptor closes: libev must never
        # watch a closed (or reused) descriptor.
        for watcher in (self._reader, self._writer):
            if watcher is not None:
                watcher.stop()
                watcher.close()
        self._reader = self._writer = None
        self._outbox = None
        self._queued = 0
        self._parts = None
        sock.close()
        registry.discard(self)
        for group in self._groups:
            self.leave(group)
        if self.close_code is None:
            self.close_code, self.close_reason = ABNORMAL, ""
        if not self._busy:
            # Nothing of ours is running for this connection (a busy greenlet
            # reports when it ends): report from a greenlet of its own, since
            # on_close may wait on I/O.
            gevent.spawn_raw(self._report_in_greenlet)

    def _report_in_greenlet(self) -> None:
        bind(self._ctx)  # type: ignore[arg-type]
        self._report_closed()

    def _report_closed(self) -> None:
        if self._reported:
            return
        self._reported = True
        code = self.close_code if self.close_code is not None else ABNORMAL
        try:
            self.on_close(code, self.close_reason)
        except Exception:
            self._failed("on_close")

    def _path(self) -> str:
        return self._ctx.path if self._ctx is not None else "?"

    # -- timers (run by the ticker greenlet) --------------------------------

    def _deadline(self) -> float:
        if self._closing_deadline:
            return self._closing_deadline
        return min(self._next_ping, self._pong_deadline)

    def _tick(self, now: float) -> None:
        if self._closing_deadline:
            if now >= self._closing_deadline:
                self._drop()  # the peer never answered our close frame
            return
        if now >= self._pong_deadline:
            log.info("websocket %s: no pong in %g s, dropping it", self._path(), self.ping_timeout)
            self._drop()
            return
        if now >= self._next_ping and self._is_open():
            self._write(self._protocol().send(Ping(payload=b"webmini")))
            self._next_ping = _NEVER
            self._pong_deadline = now + self.ping_timeout
