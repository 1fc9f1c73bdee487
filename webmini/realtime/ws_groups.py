"""WebSocket connections of this process: groups, broadcast, fan-out, the ticker, close at exit.

One :class:`Registry` object per process (``registry``) holds the open
connections and the groups they joined; ``websocket.py`` registers each
connection with it and asks it to join, leave and tick. The registry knows a
connection only through the small :class:`Member` interface, so this module
never imports ``websocket.py``. The module-level functions are the public API
(``web.WebSocket.broadcast`` and friends), each a call on ``registry``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from webmini._extras import require

with require("websocket", "webmini.WebSocket"):
    import gevent
    from wsproto.events import CloseConnection
    from wsproto.frame_protocol import FrameProtocol, Opcode

from webmini.realtime.fanout import Fanout

log = logging.getLogger("webmini.realtime.websocket")

GOING_AWAY = 1001


class Member(Protocol):
    """What the registry needs of a connection (``webmini.realtime.websocket.WebSocket``)."""

    ping_interval: float | None
    ping_timeout: float
    close_timeout: float
    close_code: int | None
    close_reason: str
    _closing_deadline: float

    def _is_open(self) -> bool: ...
    def _write(self, data: bytes) -> None: ...
    def _protocol(self) -> Any: ...
    def _drop(self) -> None: ...
    def _deadline(self) -> float: ...
    def _tick(self, now: float) -> None: ...


class Registry:
    """The open connections of this process, their groups, the fan-out and the deadline ticker."""

    def __init__(self) -> None:
        self.open: set[Member] = set()
        self.groups: dict[str, set[Member]] = {}
        self.fanout: Fanout | None = None
        # PERF: a broadcast frame is encoded once and the same bytes are queued on
        # every member; server frames are unmasked, so they are identical.
        self.encoder = FrameProtocol(client=False, extensions=[])
        self._ticker: Any = None
        self._tick_period = 1.0
        self._shutdown_hook_installed = False

    # -- membership -------------------------------------------------------

    def add(self, ws: Member) -> None:
        """Register a connection that just opened (ticker and close-at-exit included)."""
        self.open.add(ws)
        self.start_ticker(ws)
        self._install_shutdown_hook()

    def discard(self, ws: Member) -> None:
        """Forget a connection that is over."""
        self.open.discard(ws)

    def join(self, ws: Member, group: str) -> None:
        """Add ``ws`` to ``group``; with a fan-out, make sure it listens for the others."""
        self.groups.setdefault(group, set()).add(ws)
        if self.fanout is not None:
            self.fanout.ensure_started(self.deliver_local)

    def leave(self, ws: Member, group: str) -> None:
        """Remove ``ws`` from ``group`` (a group left empty is forgotten)."""
        members = self.groups.get(group)
        if members is not None:
            members.discard(ws)
            if not members:
                del self.groups[group]

    # -- sending ----------------------------------------------------------

    def broadcast(self, group: str, data: str | bytes, exclude: Member | None = None) -> int:
        """See :func:`broadcast`."""
        text = isinstance(data, str)
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        opcode = Opcode.TEXT if text else Opcode.BINARY
        if self.fanout is not None:
            self.fanout.ensure_started(self.deliver_local)
            self.fanout.publish(group, int(opcode), payload)
        return self.deliver_local(group, int(opcode), payload, exclude)

    def deliver_local(self, group: str, opcode: int, payload: bytes,
                      exclude: Member | None = None) -> int:
        """Queue one frame for every open member of ``group`` in this process; return how many."""
        members = self.groups.get(group)
        if not members:
            return 0
        frame = bytes(
            self.encoder.send_data(payload if opcode == Opcode.BINARY else payload.decode(), True)
        )
        count = 0
        for member in list(members):
            if member is exclude:
                continue
            if member._is_open():
                member._write(frame)
                count += 1
        return count

    def set_fanout(self, fanout: Fanout | None) -> None:
        """See :func:`set_fanout`."""
        if self.fanout is not None and self.fanout is not fanout:
            self.fanout.stop()
        self.fanout = fanout

    def close_all(self, code: int = GOING_AWAY, reason: str = "server going away") -> int:
        """See :func:`close_all`."""
        count = 0
        for ws in list(self.open):
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

    def _install_shutdown_hook(self) -> None:
        """Run :meth:`close_all` when this process exits (once per process)."""
        if self._shutdown_hook_installed:
            return
        self._shutdown_hook_installed = True
        from webmini.serving.uwsgi import at_exit

        at_exit(self.close_all)

    # -- the shared ticker: pings, pong and close deadlines -----------------

    def start_ticker(self, ws: Member) -> None:
        """Make sure one greenlet per process checks the deadlines of every connection."""
        if ws.ping_interval is None and not ws._closing_deadline:
            return
        # PERF: one ticker for every connection instead of a timer per connection;
        # a deadline is met within a tick (a quarter of the shortest interval, <= 1 s).
        periods = [ws.ping_timeout, ws.close_timeout]
        if ws.ping_interval:
            periods.append(ws.ping_interval)
        self._tick_period = max(0.01, min(self._tick_period, min(periods) / 4))
        if self._ticker is None or self._ticker.dead:
            self._ticker = gevent.spawn(self._tick_loop)

    def _tick_loop(self) -> None:
        while self.open:
            gevent.sleep(self._tick_period)
            now = time.monotonic()
            for ws in list(self.open):
                if ws._deadline() <= now:
                    ws._tick(now)


#: The connections of this process.
registry = Registry()


def broadcast(group: str, data: str | bytes, exclude: Member | None = None) -> int:
    """Send ``data`` to ``group`` here and, with a fanout set, on the other workers.

    Returns how many connections of this process it was queued for. Callable
    from any greenlet, including plain HTTP handlers.
    """
    return registry.broadcast(group, data, exclude)


def set_fanout(fanout: Fanout | None) -> None:
    """Relay broadcasts to the other worker processes of this node through ``fanout``."""
    registry.set_fanout(fanout)


def close_all(code: int = GOING_AWAY, reason: str = "server going away") -> int:
    """Send every open connection of this process a close frame, then hang up; return how many.

    Called when a worker exits (uWSGI reload or shutdown, interpreter exit),
    so that clients see 1001 rather than a cut connection and reconnect.
    """
    return registry.close_all(code, reason)


def connections() -> int:
    """Return how many WebSocket connections this process holds open."""
    return len(registry.open)


def group_size(group: str) -> int:
    """Return how many connections of this process are in ``group``."""
    return len(registry.groups.get(group, ()))
