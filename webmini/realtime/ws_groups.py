"""WebSocket connections of this process: groups, broadcast, fan-out, the ticker, close at exit."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from webmini._extras import require

with require("websocket", "webmini.WebSocket"):
    import gevent
    from wsproto.events import CloseConnection
    from wsproto.frame_protocol import FrameProtocol, Opcode

from webmini.realtime.fanout import Fanout

if TYPE_CHECKING:
    from webmini.realtime.websocket import WebSocket

log = logging.getLogger("webmini.realtime.websocket")

GOING_AWAY = 1001

# Open connections of this process, and the groups they joined.
_open: set[WebSocket] = set()
_groups: dict[str, set[WebSocket]] = {}
_fanout: Fanout | None = None

# PERF: a broadcast frame is encoded once and the same bytes are queued on
# every member; server frames are unmasked, so they are identical.
_encoder = FrameProtocol(client=False, extensions=[])


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
            member._write(frame)
            count += 1
    return count


def set_fanout(fanout: Fanout | None) -> None:
    """Relay broadcasts to the other worker processes of this node through ``fanout``."""
    global _fanout
    if _fanout is not None and _fanout is not fanout:
        _fanout.stop()
    _fanout = fanout


def close_all(code: int = GOING_AWAY, reason: str = "server going away") -> int:
    """Send every open connection of this process a close frame, then hang up; return how many.

    Called when a worker exits (uWSGI reload or shutdown, interpreter exit),
    so that clients see 1001 rather than a cut connection and reconnect.
    """
    count = 0
    for ws in list(_open):
        try:
            if ws._is_open():
                conn = ws._protocol()
                ws.close_code, ws.close_reason = code, reason
                # No closing handshake: the process is going; the frame is
                # written if the socket takes it, then the connection is dropped.
                ws._write(conn.send(CloseConnection(code=code, reason=reason or None)))
                count += 1
            ws._drop()
        except Exception:  # at exit, a half-torn-down loop must not stop the others
            log.debug("websocket close_all", exc_info=True)
    return count


_shutdown_hook_installed = False


def _install_shutdown_hook() -> None:
    """Run :func:`close_all` when this process exits (once per process)."""
    global _shutdown_hook_installed
    if _shutdown_hook_installed:
        return
    _shutdown_hook_installed = True
    from webmini.serving.uwsgi import at_exit

    at_exit(close_all)


def connections() -> int:
    """Return how many WebSocket connections this process holds open."""
    return len(_open)


def group_size(group: str) -> int:
    """Return how many connections of this process are in ``group``."""
    return len(_groups.get(group, ()))



# -- the shared ticker: pings, pong and close deadlines ---------------------------

_ticker: Any = None
_tick_period = 1.0


def _start_ticker(ws: WebSocket) -> None:
    """Make sure one greenlet per process checks the deadlines of every connection."""
    global _ticker, _tick_period
    if ws.ping_interval is None and not ws._closing_deadline:
        return
    # PERF: one ticker for every connection instead of a timer per connection;
    # a deadline is met within a tick (a quarter of the shortest interval, <= 1 s).
    periods = [ws.ping_timeout, ws.close_timeout]
    if ws.ping_interval:
        periods.append(ws.ping_interval)
    _tick_period = max(0.01, min(_tick_period, min(periods) / 4))
    if _ticker is None or _ticker.dead:
        _ticker = gevent.spawn(_tick_loop)


def _tick_loop() -> None:
    while _open:
        gevent.sleep(_tick_period)
        now = time.monotonic()
        for ws in list(_open):
            if ws._deadline() <= now:
                ws._tick(now)


