"""A bounded, gevent-cooperative connection pool, independent of the database driver.

``Pool`` keeps the slots and idle connections of one process for a
``PoolOwner`` (``mysql.Database``; ``backend.PooledBackend`` for SQLite and
PostgreSQL): the owner opens (``_open``), checks (``_ping``) and names
(``_where``) its connections; the pool bounds the wait for a slot
(``acquire_timeout``, ``PoolTimeout``) and for opening or pinging a connection
(``connect_timeout``, ``ConnectError``), hands slots FIFO to waiters, recycles
old connections and never returns a connection that saw an error. The options
of every driver's database URL are typed here too (``url_options``).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import time
from collections import deque
from collections.abc import Callable, Collection
from contextlib import suppress
from typing import Any, Protocol
from urllib.parse import parse_qsl

from webmini._extras import require

with require("gevent", "webmini.stores.pool"):
    import gevent
    import gevent.event
    import gevent.lock

from webmini.errors import ServiceUnavailable
from webmini.storage import Storage

__all__ = [
    "SSL_MODES", "ConnectError", "Pool", "PoolOwner", "PoolTimeout", "Pooled", "TLSContext",
    "URL_OPTIONS", "build_tls_context", "force_close", "is_local", "quit_politely", "url_options",
]


#: TLS modes of ``Database(ssl=...)`` / ``?ssl=`` (see the class docstring).
SSL_MODES = ("disabled", "preferred", "required", "verify")


def is_local(host: str, unix_socket: str | None) -> bool:
    """True for a unix socket or a loopback host: traffic that never leaves the machine."""
    if unix_socket or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_tls_context(mode: str, cafile: str | None) -> ssl.SSLContext:
    """One client SSLContext for a pool: verifying (``verify``) or encrypting only."""
    if mode == "verify":
        # SECURITY: certificate chain and host name are both checked.
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        # SECURITY: encryption without verification stops passive sniffing only;
        # anyone on the path can impersonate the server. README says so.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _bool_or_float(value: str) -> bool | float:
    """A URL option that is a yes/no word or a number of seconds (``pre_ping``)."""
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    return float(value)


#: Every database URL option (``?pool_size=10&pre_ping=30``) and its type.
URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "pool_size": int,
    "max_overflow": int,
    "acquire_timeout": float,
    "connect_timeout": float,
    "read_timeout": float,
    "write_timeout": float,
    "recycle": float,
    "pre_ping": _bool_or_float,
    "timeout": float,
    "port": int,
    "charset": str,
    "unix_socket": str,
    "unix_sock": str,
    "ssl": str,
    "ssl_ca": str,
    "application_name": str,
}


def url_options(query: str, allowed: Collection[str] = URL_OPTIONS.keys()) -> dict[str, Any]:
    """Typed keywords from a database URL's query string (ValueError for an unknown option)."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in allowed or key not in URL_OPTIONS:
            raise ValueError(f"unknown database URL option {key!r}")
        out[key] = URL_OPTIONS[key](value)
    return out


class TLSContext:
    """One lazily built SSLContext per pool: built once, off the hub, never per connect."""

    def __init__(self, mode: str, cafile: str | None = None) -> None:
        self.mode, self.cafile = mode, cafile
        self._ctx: ssl.SSLContext | None = None
        self._lock = gevent.lock.Semaphore()

    def get(self) -> ssl.SSLContext:
        """The context (built on first use in a native thread)."""
        ctx = self._ctx
        if ctx is None:
            with self._lock:
                ctx = self._ctx
                if ctx is None:
                    # PERF: loading the CA store is a ~25 ms C call; in the hub's
                    # thread pool it leaves the other greenlets running.
                    ctx = gevent.get_hub().threadpool.apply(
                        build_tls_context, (self.mode, self.cafile)
                    )
                    self._ctx = ctx
        return ctx


class PoolOwner(Protocol):
    """What a ``Pool`` needs from the object that owns it."""

    pool_size: int
    max_overflow: int
    acquire_timeout: float
    connect_timeout: float
    recycle: float | None
    _ping_after: float | None
    _pool: Any

    def _open(self) -> Any:
        """Open one driver connection (may yield to the hub, never block it)."""

    def _ping(self, raw: Any) -> None:
        """Raise if ``raw`` is no longer usable."""

    def _where(self) -> str:
        """Where the database is, for error messages (never the password)."""


class _PoolUnavailable(ServiceUnavailable):
    """The pool could not give a connection (answered 503); ``detail`` says why, for logs."""

    def __init__(self, detail: str) -> None:
        # SECURITY: the HTTP body stays generic; the detail is for logs only.
        super().__init__("service unavailable", [("Retry-After", "1")])
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class PoolTimeout(_PoolUnavailable):
    """No pooled connection became free within ``acquire_timeout`` (answered 503)."""


class ConnectError(_PoolUnavailable):
    """The database could not be reached within ``connect_timeout`` (answered 503)."""


class Pooled:
    """A driver connection with the bookkeeping the pool needs."""

    __slots__ = ("raw", "created", "last_used", "broken", "cursor")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.created = self.last_used = time.monotonic()
        self.broken = False
        #: A driver cursor kept for the connection's life by stores that reuse one.
        self.cursor: Any = None


def force_close(raw: Any) -> None:
    """Close a connection's socket without talking to the server (state unknown)."""
    closer = getattr(raw, "_force_close", None) or raw.close  # pymysql has _force_close
    with suppress(Exception):
        closer()


def quit_politely(raw: Any) -> None:
    """Close a healthy connection politely (COM_QUIT), never raising."""
    try:
        raw.close()
    except Exception:
        force_close(raw)


class Pool:
    """The slots and idle connections of one process, for one ``PoolOwner``."""

    def __init__(self, db: PoolOwner) -> None:
        self.db = db
        self.pid = os.getpid()
        self.free = db.pool_size + db.max_overflow
        # FIFO hand-off: a released slot goes to the oldest waiter, so a greenlet
        # that releases and re-acquires at once cannot starve the waiting ones.
        self.waiters: deque[gevent.event.Event] = deque()
        self.idle: deque[Pooled] = deque()
        self.in_use = 0
        # A connection last used before this moment is pinged at checkout: set
        # when a statement finds its connection dead (server restart, KILL), so
        # its idle siblings, likely dead too, are checked instead of each failing
        # a request.
        self.suspect_before = 0.0
        self.connects = 0
        self.discards = 0
        self.timeouts = 0

    def _take_slot(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        waiter = gevent.event.Event()
        self.waiters.append(waiter)
        try:
            waiter.wait(self.db.acquire_timeout)
        except BaseException:  # killed while waiting: keep the books straight
            if waiter.is_set():
                self._give_slot()
            else:
                self.waiters.remove(waiter)
            raise
        if not waiter.is_set():
            self.waiters.remove(waiter)
            self.timeouts += 1
            raise PoolTimeout(
                f"no database connection free within {self.db.acquire_timeout} s "
                f"({self.in_use} in use, pool_size={self.db.pool_size}, "
                f"max_overflow={self.db.max_overflow})"
            )

    def _give_slot(self) -> None:
        if self.waiters:
            self.waiters.popleft().set()  # the slot passes straight to that waiter
        else:
            self.free += 1

    def acquire(self) -> Pooled:
        """Take a slot (bounded wait), then hand out a live connection in it."""
        self._take_slot()
        # The slot is counted before any yielding I/O, so a greenlet killed while
        # connecting gives it back in the except clause below: no slot can leak.
        self.in_use += 1
        try:
            return self._checkout()
        except BaseException:
            self.in_use -= 1
            self._give_slot()
            raise

    def _checkout(self) -> Pooled:
        db = self.db
        # PERF: the common case (a recently used idle connection, no ping due)
        # needs no timer and no round trip.
        if self.idle:
            conn = self.idle[-1]
            now = time.monotonic()
            if (db.recycle is None or now - conn.created < db.recycle) and (
                db._ping_after is None
                or (now - conn.last_used < db._ping_after
                    and conn.last_used >= self.suspect_before)
            ):
                return self.idle.pop()
        timer = gevent.Timeout(db.connect_timeout)
        timer.start()
        candidate: Pooled | None = None
        try:
            while self.idle:
                candidate = self.idle.pop()  # LIFO: the warmest connection first
                now = time.monotonic()
                if db.recycle is not None and now - candidate.created >= db.recycle:
                    quit_politely(candidate.raw)
                    candidate = None
                    continue
                if db._ping_after is not None and (
                    now - candidate.last_used >= db._ping_after
                    or candidate.last_used < self.suspect_before
                ):
                    try:
                        db._ping(candidate.raw)
                    except Exception:
                        self._discard(candidate)
                        candidate = None
                        continue
                found, candidate = candidate, None
                return found
            try:
                raw = db._open()
            except Exception as exc:
                raise ConnectError(
                    f"cannot connect to the database at {db._where()}: {exc}"
                ) from exc
            self.connects += 1
            return Pooled(raw)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            raise ConnectError(
                f"no answer from the database at {db._where()} within {db.connect_timeout} s"
            ) from None
        finally:
            timer.close()
            if candidate is not None:  # interrupted while pinging it
                self._discard(candidate)

    def _discard(self, conn: Pooled) -> None:
        self.discards += 1
        force_close(conn.raw)

    def release(self, conn: Pooled, discard: bool) -> None:
        """Give a slot back: keep the connection idle, close it, or discard it."""
        try:
            if os.getpid() != self.pid:
                return  # inherited through fork: the parent owns that socket
            if discard or conn.broken:
                self._discard(conn)
            elif self.db._pool is not self:
                quit_politely(conn.raw)  # the pool was closed while this was checked out
            elif len(self.idle) + self.in_use > self.db.pool_size and not self.waiters:
                quit_politely(conn.raw)  # an overflow connection nobody is waiting for
            else:
                conn.last_used = time.monotonic()
                self.idle.append(conn)
        finally:
            self.in_use -= 1
            self._give_slot()

    def close_idle(self) -> None:
        """Close every idle connection (only in the process that opened them)."""
        idle, self.idle = self.idle, deque()
        if os.getpid() == self.pid:
            for conn in idle:
                quit_politely(conn.raw)

    def stats(self) -> Storage:
        """Counters for health checks and metrics."""
        size = self.in_use + len(self.idle)
        return Storage(
            size=size,
            in_use=self.in_use,
            idle=len(self.idle),
            overflow=max(0, size - self.db.pool_size),
            waiting=len(self.waiters),
            pool_size=self.db.pool_size,
            max_overflow=self.db.max_overflow,
            connects=self.connects,
            discards=self.discards,
            timeouts=self.timeouts,
        )
