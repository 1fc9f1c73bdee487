"""WebSocket handlers: ``class Chat(web.WebSocket)`` served by uWSGI + gevent or the dev server.

A handler class is routed like any other; its ``GET`` upgrades the
connection and runs the message loop in the request's own greenlet::

    class Chat(web.WebSocket):
        def on_open(self): self.join("room")
        def on_message(self, data): self.broadcast("room", data)
        def on_close(self, code, reason): ...

Events are ``on_open``/``on_message``/``on_close``; actions are ``send``,
``close``, ``join``, ``leave`` and ``broadcast``. Only the request greenlet
ever touches the connection: ``send``/``close`` from any other greenlet
queue a frame and wake it.
"""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

try:
    import gevent
    from wsproto.connection import Connection, ConnectionState, ConnectionType
    from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
    from wsproto.frame_protocol import FrameProtocol, Opcode
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "webmini.WebSocket needs gevent and wsproto: pip install webmini[websocket]"
    ) from exc

from .ctx import ctx
from .errors import HTTPError
from .websocket_backends import accept
from .websocket_fanout import Fanout

__all__ = [
    "WebSocket", "broadcast", "connections", "group_size", "set_fanout",
    "NORMAL", "GOING_AWAY", "PROTOCOL_ERROR", "ABNORMAL", "POLICY_VIOLATION", "TOO_BIG",
    "INTERNAL_ERROR",
]

log = logging.getLogger("webmini")

# Close codes (RFC 6455 section 7.4.1).
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
ABNORMAL = 1006  # never sent: the connection was lost without a close frame
POLICY_VIOLATION = 1008
TOO_BIG = 1009
INTERNAL_ERROR = 1011

_READ_SIZE = 65536
_NEVER = float("inf")
# Why a parked request greenlet was switched back into.
_READABLE = "readable"
_WOKEN = "woken"

# Open connections of this process, and the groups they joined.
_open: set[WebSocket] = set()
_groups: dict[str, set[WebSocket]] = {}
_fanout: Fanout | None = None

# PERF: a broadcast frame is encoded once and the same bytes are queued on
# every member; server frames are unmasked, so they are identical.
_encoder = FrameProtocol(client=False, extensions=[])


class WebSocket:
    """Base class of WebSocket handlers; override the ``on_*`` events."""

    # No per-request time limit: a WebSocket lives as long as its peer does.
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
    #: Outgoing messages queued before the peer counts as too slow (closed with 1008).
    max_queue: int = 4096

    # Set by GET for the life of the connection.
    args: tuple[str, ...]
    subprotocol: str | None
    close_code: int | None
    close_reason: str
    _conn: Connection | None  # the wsproto parser, made when the first bytes come in
    _outbox: list[bytes] | None
    _groups: tuple[str, ...]
    _parts: list[Any] | None
    _close_wanted: tuple[int, str] | None
    _wake_cb: Any
    _sock: Any
    _greenlet: Any
    _hub: Any

    # -- events (override) ----------------------------------------------

    def on_open(self) -> None:
        """Called once the connection is open."""

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
            frame = _encoder.send_data(data, True)
        else:
            frame = _encoder.send_data(bytes(data), True)
        return self._push(bytes(frame))

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the closing handshake with ``code`` and ``reason`` (from any greenlet)."""
        if not self._active or self._close_wanted:
            return
        self._close_wanted = (code, reason)
        self._wakeup()

    def join(self, group: str) -> None:
        """Add this connection to ``group`` (see :func:`broadcast`)."""
        _groups.setdefault(group, set()).add(self)
        if group not in self._groups:
            self._groups += (group,)
        if _fanout is not None:
            _fanout.ensure_started(_deliver_local)

    def leave(self, group: str) -> None:
        """Remove this connection from ``group``."""
        members = _groups.get(group)
        if members is not None:
            members.discard(self)
            if not members:
                del _groups[group]
        if group in self._groups:
            self._groups = tuple(g for g in self._groups if g != group)

    @staticmethod
    def broadcast(group: str, data: str | bytes, exclude: WebSocket | None = None) -> int:
        """Send ``data`` to every member of ``group`` on every worker; see :func:`broadcast`."""
        return broadcast(group, data, exclude)

    # -- the upgrade and the message loop --------------------------------

    def GET(self, *args: str) -> bytes:  # noqa: N802 - handler method names are HTTP verbs
        """Upgrade the request to a WebSocket and serve it until it closes."""
        env = ctx.env
        key = _check_handshake(env)
        _check_origin(env, self.origins)
        self.subprotocol = _choose_subprotocol(env, self.subprotocols)
        self.args = args
        sock, borrowed, pending = accept(env, key, self.subprotocol)
        env["webmini.upgraded"] = True
        del env  # PERF: nothing below needs the environ
        try:
            self._serve(sock, pending)
        finally:
            if borrowed:
                sock.detach()  # the server closes its descriptor itself
        # The response went out as the 101 handshake; nothing follows it.
        return b""

    # PERF: per-connection state lives in slots, and what an idle connection
    # does not need (the wsproto parser, the outbox, fragment buffers, a
    # timer) is created only when used: 10,000 idle connections add up.
    __slots__ = (
        "args", "subprotocol", "close_code", "close_reason",
        "_active", "_conn", "_sock", "_outbox", "_greenlet", "_hub", "_groups", "_parts",
        "_size", "_lost", "_close_wanted", "_parked", "_wake_cb", "_closing_deadline",
        "_next_ping", "_pong_deadline",
    )

    def __init__(self) -> None:
        self.args = ()
        self.subprotocol = None
        self.close_code = None
        self.close_reason = ""
        # Connection state, set up in _serve; until then (or after a failed
        # upgrade) send() and close() are harmless no-ops.
        self._active = False
        self._conn = None
        self._outbox = None
        self._groups = ()
        self._parts = None
        self._size = 0
        self._lost = False
        self._close_wanted = None
        self._parked = False
        self._wake_cb = None
        self._closing_deadline = 0.0
        self._next_ping = _NEVER
        self._pong_deadline = _NEVER

    def _is_open(self) -> bool:
        if not self._active or self._close_wanted or self._lost:
            return False
        conn = self._conn
        return conn is None or conn.state is ConnectionState.OPEN

    def _protocol(self) -> Connection:
        conn = self._conn
        if conn is None:
            conn = self._conn = Connection(ConnectionType.SERVER)
        return conn

    def _serve(self, sock: Any, pending: bytes = b"") -> None:
        self._sock = sock
        self._greenlet = gevent.getcurrent()
        self._hub = hub = gevent.get_hub()
        self._active = True
        if self.ping_interval:
            self._next_ping = time.monotonic() + self.ping_interval
        watcher = hub.loop.io(sock.fileno(), 1)
        _open.add(self)
        _start_ticker(self)
        try:
            self._call(self.on_open)
            if pending:
                self._receive(pending)
            while not self._lost:
                conn = self._conn
                if conn is not None and conn.state is ConnectionState.CLOSED:
                    break
                self._step(sock, watcher)
        except OSError:
            self._lost = True
        finally:
            self._lost = True
            self._active = False
            watcher.close()
            _open.discard(self)
            for group in self._groups:
                self.leave(group)
            self._outbox = None
            if self.close_code is None:
                self.close_code = ABNORMAL
            try:
                self.on_close(self.close_code, self.close_reason)
            except Exception:
                log.exception("error in %s.on_close", type(self).__name__)

    def _step(self, sock: Any, watcher: Any) -> None:
        readable = False
        if not self._outbox and not self._want_close_now() and not self._due():
            readable = self._park(watcher)
        if readable:
            self._receive(sock.recv(_READ_SIZE))
        self._flush()
        if self._want_close_now():
            code, reason = self._close_wanted or (NORMAL, "")
            self._send_close(code, reason)
        self._timers()

    def _park(self, watcher: Any) -> bool:
        """Wait in the hub until readable or woken; True if readable."""
        # PERF: switch to the hub directly, no Event/Waiter in between: the
        # C stack a parked greenlet saves on the heap grows with call depth.
        # One-shot readiness: a level-triggered watcher left running while
        # on_message waits on something else would spin the hub.
        watcher.start(self._greenlet.switch, _READABLE)
        self._parked = True
        try:
            why = self._hub.switch()
        finally:
            self._parked = False
            watcher.stop()
            if self._wake_cb is not None:
                # A wake-up that lost the race must not switch in later.
                self._wake_cb.stop()
                self._wake_cb = None
        return why is _READABLE

    def _wakeup(self) -> None:
        """Make the request greenlet look at its outbox, close request and timers."""
        if self._parked and self._wake_cb is None:
            self._wake_cb = self._hub.loop.run_callback(self._greenlet.switch, _WOKEN)

    def _receive(self, data: bytes) -> None:
        conn = self._protocol()
        conn.receive_data(data or None)
        self._handle_events(conn)

    def _want_close_now(self) -> bool:
        if self._close_wanted is None:
            return False
        conn = self._conn
        return conn is None or conn.state is ConnectionState.OPEN

    def _deadline(self) -> float:
        if self._closing_deadline:
            return self._closing_deadline
        return min(self._next_ping, self._pong_deadline)

    def _due(self) -> bool:
        return self._deadline() <= time.monotonic()

    def _timers(self) -> None:
        now = time.monotonic()
        if self._closing_deadline:
            if now >= self._closing_deadline:
                self._lost = True  # the peer never answered our close frame
            return
        if now >= self._pong_deadline:
            log.info("websocket %s: no pong in %g s, dropping it", ctx.path, self.ping_timeout)
            self._lost = True
            return
        if now >= self._next_ping and self._is_open():
            self._write(self._protocol().send(Ping(payload=b"webmini")))
            self._next_ping = _NEVER
            self._pong_deadline = now + self.ping_timeout

    def _handle_events(self, conn: Connection) -> None:
        for event in conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                if conn.state is ConnectionState.OPEN and not self._close_wanted:
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

    def _closed_by_peer(self, conn: Connection, event: CloseConnection) -> None:
        if conn.state is ConnectionState.REMOTE_CLOSING:
            # The peer started the closing handshake: answer it.
            self.close_code, self.close_reason = event.code, event.reason or ""
            self._write(conn.send(event.response()))
        elif conn.state is ConnectionState.OPEN:
            # wsproto reports a protocol error (bad UTF-8, bad frame) this way.
            self._send_close(event.code, event.reason or "")
            self._lost = True
        elif self.close_code is None:  # the answer to our own close frame
            self.close_code, self.close_reason = event.code, event.reason or ""
            if event.code == ABNORMAL:
                self.close_reason = ""

    def _collect(self, event: TextMessage | BytesMessage) -> None:
        data = event.data
        self._size += len(data)
        # SECURITY: the size is checked as chunks arrive, before the message is
        # whole, so a peer announcing a huge frame cannot make us buffer it.
        if self._size > self.max_message_size:
            self._parts = None
            self._size = 0
            self._close_wanted = (TOO_BIG, "message too big")
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
        except OSError:
            raise
        except Exception:
            log.exception("error in %s.%s", type(self).__name__, func.__name__)
            self.close(INTERNAL_ERROR, "internal error")

    def _send_close(self, code: int, reason: str) -> None:
        self._outbox = None
        self.close_code, self.close_reason = code, reason
        self._write(self._protocol().send(CloseConnection(code=code, reason=reason or None)))
        self._closing_deadline = time.monotonic() + self.close_timeout

    def _push(self, frame: bytes) -> bool:
        if gevent.getcurrent() is self._greenlet:
            # The request greenlet is the only writer: write in order, now.
            self._flush()
            self._write(frame)
            return not self._lost
        outbox = self._outbox
        if outbox is None:
            self._outbox = [frame]
        elif len(outbox) >= self.max_queue:
            self.close(POLICY_VIOLATION, "too slow")
            return False
        else:
            outbox.append(frame)
        self._wakeup()
        return True

    def _flush(self) -> None:
        while self._outbox and not self._lost:
            outbox = self._outbox
            # PERF: join what is queued into one write; drop the list once empty.
            self._outbox = None
            self._write(outbox[0] if len(outbox) == 1 else b"".join(outbox))

    def _write(self, data: bytes) -> None:
        if self._lost:
            return
        try:
            self._sock.sendall(data)
        except OSError:
            self._lost = True


# -- the shared ticker: pings, pong and close deadlines ---------------------------

_ticker: Any = None
_tick = 1.0


def _start_ticker(ws: WebSocket) -> None:
    """Make sure one greenlet per process wakes connections whose deadline passed."""
    global _ticker, _tick
    if ws.ping_interval is None and not ws.close_timeout:
        return
    # PERF: one ticker for every connection instead of a timer per connection;
    # a deadline is met within a tick (a quarter of the shortest interval, <= 1 s).
    periods = [ws.ping_timeout, ws.close_timeout]
    if ws.ping_interval:
        periods.append(ws.ping_interval)
    _tick = max(0.01, min(_tick, min(periods) / 4))
    if _ticker is None or _ticker.dead:
        _ticker = gevent.spawn(_tick_loop)


def _tick_loop() -> None:
    while _open:
        gevent.sleep(_tick)
        now = time.monotonic()
        for ws in list(_open):
            if ws._parked and ws._deadline() <= now:
                ws._wakeup()


# -- groups and broadcast -------------------------------------------------------


def broadcast(group: str, data: str | bytes, exclude: WebSocket | None = None) -> int:
    """Send ``data`` to ``group`` here and, with a fanout set, on the other workers.

    Returns how many connections of this process it was queued for. Callable
    from any greenlet, including plain HTTP handlers.
    """
    text = isinstance(data, str)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    opcode = Opcode.TEXT if text else Opcode.BINARY
    if _fanout is not None:
        _fanout.ensure_started(_deliver_local)
        _fanout.publish(group, int(opcode), payload)
    return _deliver_local(group, int(opcode), payload, exclude)


def _deliver_local(
    group: str, opcode: int, payload: bytes, exclude: WebSocket | None = None
) -> int:
    members = _groups.get(group)
    if not members:
        return 0
    frame = bytes(
        _encoder.send_data(payload if opcode == Opcode.BINARY else payload.decode(), True)
    )
    count = 0
    for member in list(members):
        if member is exclude:
            continue
        if member._is_open():
            member._push(frame)
            count += 1
    return count


def set_fanout(fanout: Fanout | None) -> None:
    """Relay broadcasts to the other worker processes of this node through ``fanout``."""
    global _fanout
    if _fanout is not None and _fanout is not fanout:
        _fanout.stop()
    _fanout = fanout


def connections() -> int:
    """Return how many WebSocket connections this process holds open."""
    return len(_open)


def group_size(group: str) -> int:
    """Return how many connections of this process are in ``group``."""
    return len(_groups.get(group, ()))


# -- the opening handshake ------------------------------------------------------


def _check_handshake(env: dict[str, Any]) -> str:
    upgrade = env.get("HTTP_UPGRADE", "").lower()
    connection = env.get("HTTP_CONNECTION", "").lower()
    if upgrade != "websocket" or "upgrade" not in [t.strip() for t in connection.split(",")]:
        raise HTTPError(
            "426 Upgrade Required",
            [("Upgrade", "websocket"), ("Connection", "Upgrade"),
             ("Content-Type", "text/plain; charset=utf-8")],
            "this URL speaks WebSocket only",
        )
    if env.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
        raise HTTPError(
            "426 Upgrade Required",
            [("Sec-WebSocket-Version", "13"), ("Content-Type", "text/plain; charset=utf-8")],
            "unsupported WebSocket version",
        )
    key = env.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        valid = len(binascii.a2b_base64(key.encode("ascii"))) == 16
    except (binascii.Error, UnicodeEncodeError):
        valid = False
    if not valid:
        raise HTTPError(400, [("Content-Type", "text/plain; charset=utf-8")],
                        "bad Sec-WebSocket-Key")
    return key


def _check_origin(env: dict[str, Any], allowed: Iterable[str]) -> None:
    origin = env.get("HTTP_ORIGIN")
    # SECURITY: a browser sends the page's Origin on every WebSocket; a page
    # from another site must not ride the user's cookies into this socket
    # (cross-site WebSocket hijacking). Clients that send no Origin are not
    # browsers, and are no such risk.
    if origin is None:
        return
    allowed = tuple(allowed)
    if "*" in allowed or origin in allowed:
        return
    host = env.get("HTTP_HOST", "")
    netloc = urlsplit(origin).netloc
    if netloc and host and netloc.lower() == host.lower():
        return
    raise HTTPError(403, [("Content-Type", "text/plain; charset=utf-8")],
                    "cross-origin WebSocket refused")


def _choose_subprotocol(env: dict[str, Any], ours: Iterable[str]) -> str | None:
    offered = env.get("HTTP_SEC_WEBSOCKET_PROTOCOL")
    if not offered:
        return None
    theirs = {p.strip() for p in offered.split(",")}
    for proto in ours:
        if proto in theirs:
            return proto
    return None
