"""A bounded, gevent-cooperative MySQL/MariaDB connection pool over pymysql.

One connection serves one greenlet at a time. A connection that saw any
exception (``gevent.Timeout`` and ``GreenletExit`` included) is closed and
replaced, never returned to the pool. Waiting for a free slot is bounded by
``acquire_timeout`` and raises ``PoolTimeout``, a 503 ``ServiceUnavailable``;
opening (or pre-pinging) a connection is bounded by ``connect_timeout`` and
raises ``ConnectError``, also a 503. The pool is created lazily in the
process that uses it: after ``fork`` (uWSGI workers) the child starts a
fresh pool and never touches the parent's sockets. Inside ``db.connection()``
or ``db.transaction()``, further ``db.*`` calls of the same greenlet reuse
that connection (and so join the transaction); a nested ``transaction()`` is
a SAVEPOINT.

    db = Database.from_url("mysql://app:secret@127.0.0.1:3306/app?pool_size=10")
    rows = db.query("SELECT id, name FROM users WHERE age > %s", (18,))
    with db.transaction() as tx:
        tx.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (5, 1))

Parameters use the driver's paramstyle (``%s`` or ``%(name)s``) and are
escaped by the driver; with parameters, a literal ``%`` is written ``%%``.
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from webmini._extras import gevent_patched, require

with require("mysql", "webmini.stores.mysql"):
    import gevent
    import gevent.event
    import pymysql

from webmini.errors import ServiceUnavailable
from webmini.storage import Storage

__all__ = ["ConnectError", "Connection", "Database", "ExecResult", "PoolTimeout"]

log = logging.getLogger(__name__)

Params = Sequence[Any] | Mapping[str, Any] | None


class PoolTimeout(ServiceUnavailable):
    """No pooled connection became free within ``acquire_timeout`` (answered 503)."""

    def __init__(self, detail: str) -> None:
        # SECURITY: the HTTP body stays generic; the detail is for logs only.
        super().__init__("service unavailable", [("Retry-After", "1")])
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class ConnectError(ServiceUnavailable):
    """The database could not be reached within ``connect_timeout`` (answered 503)."""

    def __init__(self, detail: str) -> None:
        # SECURITY: the HTTP body stays generic; the detail is for logs only.
        super().__init__("service unavailable", [("Retry-After", "1")])
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class ExecResult(NamedTuple):
    """What a write statement reports: affected rows and the last AUTO_INCREMENT id."""

    rowcount: int
    lastrowid: int | None


class _Pooled:
    """A driver connection with the bookkeeping the pool needs."""

    __slots__ = ("raw", "created", "last_used", "broken")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.created = self.last_used = time.monotonic()
        self.broken = False


def _force_close(raw: Any) -> None:
    """Close a connection's socket without talking to the server (state unknown)."""
    closer = getattr(raw, "_force_close", None) or raw.close  # pymysql has _force_close
    with suppress(Exception):
        closer()


def _quit(raw: Any) -> None:
    """Close a healthy connection politely (COM_QUIT), never raising."""
    try:
        raw.close()
    except Exception:
        _force_close(raw)


class _Pool:
    """The slots and idle connections of one process; see ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pid = os.getpid()
        self.free = db.pool_size + db.max_overflow
        # FIFO hand-off: a released slot goes to the oldest waiter, so a greenlet
        # that releases and re-acquires at once cannot starve the waiting ones.
        self.waiters: deque[gevent.event.Event] = deque()
        self.idle: deque[_Pooled] = deque()
        self.in_use = 0
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

    def acquire(self) -> _Pooled:
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

    def _checkout(self) -> _Pooled:
        db = self.db
        # PERF: the common case (a fresh idle connection, no ping due) needs no timer.
        if self.idle:
            conn = self.idle[-1]
            now = time.monotonic()
            if (db.recycle is None or now - conn.created < db.recycle) and (
                db._ping_after is None or now - conn.last_used < db._ping_after
            ):
                return self.idle.pop()
        timer = gevent.Timeout(db.connect_timeout)
        timer.start()
        candidate: _Pooled | None = None
        try:
            while self.idle:
                candidate = self.idle.pop()  # LIFO: the warmest connection first
                now = time.monotonic()
                if db.recycle is not None and now - candidate.created >= db.recycle:
                    _quit(candidate.raw)
                    candidate = None
                    continue
                if db._ping_after is not None and now - candidate.last_used >= db._ping_after:
                    try:
                        candidate.raw.ping()
                    except Exception:
                        self._discard(candidate)
                        candidate = None
                        continue
                found, candidate = candidate, None
                return found
            try:
                raw = db.driver.connect(**db._connect_args)
            except Exception as exc:
                raise ConnectError(
                    f"cannot connect to the database at {db._where()}: {exc}"
                ) from exc
            self.connects += 1
            return _Pooled(raw)
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

    def _discard(self, conn: _Pooled) -> None:
        self.discards += 1
        _force_close(conn.raw)

    def release(self, conn: _Pooled, discard: bool) -> None:
        """Give a slot back: keep the connection idle, close it, or discard it."""
        try:
            if os.getpid() != self.pid:
                return  # inherited through fork: the parent owns that socket
            if discard or conn.broken:
                self._discard(conn)
            elif self.db._pool is not self:
                _quit(conn.raw)  # the pool was closed while this was checked out
            elif len(self.idle) + self.in_use > self.db.pool_size and not self.waiters:
                _quit(conn.raw)  # an overflow connection nobody is waiting for
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
                _quit(conn.raw)

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


class Connection:
    """One checked-out connection: query helpers bound to it (from ``db.connection()``)."""

    def __init__(self, pooled: _Pooled, pool: _Pool) -> None:
        self._pooled = pooled
        self._pool = pool
        self._owner = gevent.getcurrent()
        self._tx_depth = 0
        self._released = False

    @property
    def raw(self) -> Any:
        """The driver's connection (do not close it or keep it past the ``with`` block)."""
        return self._pooled.raw

    def _check(self) -> None:
        if self._released:
            raise pymysql.err.InterfaceError("connection used outside its 'with' block")
        if self._pooled.broken:
            raise pymysql.err.InterfaceError("connection discarded after an earlier error")
        if self._owner is not gevent.getcurrent():
            # Two greenlets interleaving on one socket would corrupt the protocol.
            raise pymysql.err.InterfaceError("connection used by a greenlet that does not own it")

    def _run(self, sql: str, params: Params, consume: Any, many: list[Any] | None = None) -> Any:
        self._check()
        try:
            cursor = self._pooled.raw.cursor()
            # SECURITY: values travel as parameters escaped by the driver, never
            # formatted into the SQL text by webmini.
            if many is not None:
                cursor.executemany(sql, many)
            else:
                cursor.execute(sql, params)
            result = consume(cursor)
            cursor.close()
            return result
        except BaseException:
            # Whatever happened (server error, lost connection, gevent.Timeout,
            # GreenletExit), the connection's state is no longer trusted.
            self._pooled.broken = True
            raise

    def query(self, sql: str, params: Params = None) -> list[Storage]:
        """Run a statement and return every row as a Storage (dict with attributes)."""
        return self._run(sql, params, _rows)  # type: ignore[no-any-return]

    def query_one(self, sql: str, params: Params = None) -> Storage | None:
        """Run a statement and return its first row, or None when there is none."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Params = None) -> ExecResult:
        """Run a write statement; return its rowcount and lastrowid."""
        return self._run(sql, params, _exec_result)  # type: ignore[no-any-return]

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> ExecResult:
        """Run one statement for each parameter set (batched into one INSERT when possible)."""
        batch = list(seq_of_params)
        return self._run(sql, None, _exec_result, many=batch)  # type: ignore[no-any-return]


def _rows(cursor: Any) -> list[Storage]:
    if cursor.description is None:
        return []
    names = [d[0] for d in cursor.description]
    # PERF: one zip per row into a plain dict subclass; no per-row cursor logic.
    return [Storage(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _exec_result(cursor: Any) -> ExecResult:
    return ExecResult(cursor.rowcount, cursor.lastrowid)


_URL_TYPES: dict[str, Any] = {
    "pool_size": int,
    "max_overflow": int,
    "acquire_timeout": float,
    "connect_timeout": float,
    "read_timeout": float,
    "write_timeout": float,
    "recycle": float,
    "charset": str,
    "unix_socket": str,
}


def _url_bool_or_float(value: str) -> bool | float:
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    return float(value)


class Database:
    """A lazily created, per-process pool of MySQL/MariaDB connections with query helpers.

    ``pool_size`` connections are kept; up to ``max_overflow`` more are opened
    under load and closed when returned. ``acquire_timeout`` bounds the wait for
    a free slot and ``connect_timeout`` bounds opening or pre-pinging a
    connection, so a checkout takes at most their sum. ``read_timeout`` and
    ``write_timeout`` bound each socket operation of a query. A connection
    older than ``recycle`` seconds is replaced at checkout. ``pre_ping=True``
    pings every connection at checkout; a number pings only those idle at
    least that many seconds; ``False`` never pings. ``driver`` is a DB-API
    module taking pymysql's connect() keywords (pymysql, the default, is the
    one that cooperates with gevent).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3306,
        user: str = "root",
        password: str = "",
        database: str | None = None,
        *,
        unix_socket: str | None = None,
        charset: str = "utf8mb4",
        pool_size: int = 10,
        max_overflow: int = 0,
        acquire_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        read_timeout: float | None = 30.0,
        write_timeout: float | None = 30.0,
        recycle: float | None = 3600.0,
        pre_ping: bool | float = True,
        driver: ModuleType | None = None,
        connect_args: Mapping[str, Any] | None = None,
    ) -> None:
        if pool_size < 1 or max_overflow < 0:
            raise ValueError("pool_size must be >= 1 and max_overflow >= 0")
        if acquire_timeout < 0 or connect_timeout <= 0:
            raise ValueError("acquire_timeout must be >= 0 and connect_timeout > 0")
        self.host, self.port, self.user, self.database = host, port, user, database
        self.unix_socket = unix_socket
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.acquire_timeout = acquire_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.recycle = recycle if recycle and recycle > 0 else None
        self.pre_ping = pre_ping
        self._ping_after: float | None = (
            None if pre_ping is False else 0.0 if pre_ping is True else float(pre_ping)
        )
        self.driver: Any = driver if driver is not None else pymysql
        self._connect_args = self._driver_args(password, charset, dict(connect_args or {}))
        self._pool: _Pool | None = None
        self._bound: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
            f"webmini.stores.mysql.{id(self):x}", default=None
        )
        self._warn_if_blocking_driver()

    def _driver_args(self, password: str, charset: str, extra: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {
            "user": self.user,
            "password": password,
            "charset": charset,
            "autocommit": True,
            "connect_timeout": self.connect_timeout,
        }
        if self.unix_socket:
            args["unix_socket"] = self.unix_socket
        else:
            args["host"], args["port"] = self.host, self.port
        if self.database:
            args["database"] = self.database
        if self.read_timeout:
            args["read_timeout"] = self.read_timeout
        if self.write_timeout:
            args["write_timeout"] = self.write_timeout
        if self.driver is not pymysql:  # C drivers take whole seconds
            for key in ("connect_timeout", "read_timeout", "write_timeout"):
                if key in args:
                    args[key] = max(1, math.ceil(args[key]))
        args.update(extra)
        return args

    def _warn_if_blocking_driver(self) -> None:
        name = getattr(self.driver, "__name__", "")
        if name.startswith("MySQLdb") and gevent_patched():
            log.warning(
                "webmini.stores.mysql: %s is a C driver; under gevent each query blocks the whole "
                "hub (every greenlet of the worker waits). Use pymysql.", name
            )

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> Database:
        """Build from ``mysql://user:password@host:port/database?pool_size=10&...``."""
        parts = urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
            raise ValueError(f"not a mysql:// URL: scheme {parts.scheme!r}")
        try:
            port = parts.port
        except ValueError:
            # SECURITY: urllib's message quotes what it took for the port, which
            # is part of the password when the password holds '/', '#' or '?'.
            raise ValueError("bad database URL: the port is not a number (percent-encode "
                             "'/', '#', '?' and '@' in the user name and password)") from None
        kwargs: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": port or 3306,
            "user": unquote(parts.username or "root"),
            "password": unquote(parts.password or ""),
            "database": unquote(parts.path.lstrip("/")) or None,
        }
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "pre_ping":
                kwargs[key] = _url_bool_or_float(value)
            elif key in _URL_TYPES:
                kwargs[key] = _URL_TYPES[key](value)
            else:
                raise ValueError(f"unknown database URL option {key!r}")
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        # SECURITY: never show the password.
        return f"<Database {self.user}@{self._where()}/{self.database or ''}>"

    def _where(self) -> str:
        return self.unix_socket or f"{self.host}:{self.port}"

    def _get_pool(self) -> _Pool:
        pool = self._pool
        if pool is None or pool.pid != os.getpid():
            # First use in this process (e.g. a freshly forked uWSGI worker): a
            # new pool. The parent's connections are left alone, never closed.
            pool = self._pool = _Pool(self)
        return pool

    def _current(self) -> Connection | None:
        conn = self._bound.get()
        if (
            conn is not None
            and not conn._released
            and conn._owner is gevent.getcurrent()
            and conn._pool.pid == os.getpid()
        ):
            return conn
        return None

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Check out one connection for this greenlet (re-entrant within it)."""
        current = self._current()
        if current is not None:
            yield current
            return
        pool = self._get_pool()
        pooled = pool.acquire()
        conn = Connection(pooled, pool)
        token = self._bound.set(conn)
        ok = False
        try:
            yield conn
            ok = True
        finally:
            conn._released = True
            try:
                self._bound.reset(token)
            except ValueError:  # finalised from another context (an abandoned generator)
                pass
            finally:
                pool.release(pooled, discard=not ok)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Run the block in a transaction: commit on success, roll back and discard on error.

        Nested inside another transaction of the same greenlet, it becomes a
        SAVEPOINT rolled back on its own.
        """
        with self.connection() as conn:
            depth = conn._tx_depth
            savepoint = f"webmini_sp_{depth}"
            if depth:
                conn.execute(f"SAVEPOINT {savepoint}")
            else:
                conn._check()  # refuses a broken connection before BEGIN
                self._wire(conn, conn.raw.begin)
            conn._tx_depth = depth + 1
            try:
                yield conn
            except Exception:
                conn._tx_depth = depth
                if depth:
                    if not conn._pooled.broken:
                        with suppress(Exception):  # it marks the connection broken itself
                            conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                else:
                    self._rollback(conn)
                raise
            except BaseException:
                # gevent.Timeout / GreenletExit: the wire state is unknown, nothing more
                # is sent; closing the connection makes the server roll back.
                conn._tx_depth = depth
                conn._pooled.broken = True
                raise
            conn._tx_depth = depth
            if depth:
                conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            else:
                self._wire(conn, conn.raw.commit)

    @staticmethod
    def _wire(conn: Connection, call: Any) -> None:
        try:
            call()
        except BaseException:
            conn._pooled.broken = True
            raise

    def _rollback(self, conn: Connection) -> None:
        """Best-effort ROLLBACK, bounded in time; the connection is discarded anyway."""
        conn._pooled.broken = True
        with gevent.Timeout(min(self.connect_timeout, 1.0), False), suppress(Exception):
            conn.raw.rollback()

    def query(self, sql: str, params: Params = None) -> list[Storage]:
        """Run a statement on a pooled connection; return every row as a Storage."""
        with self.connection() as conn:
            return conn.query(sql, params)

    def query_one(self, sql: str, params: Params = None) -> Storage | None:
        """Run a statement on a pooled connection; return its first row or None."""
        with self.connection() as conn:
            return conn.query_one(sql, params)

    def execute(self, sql: str, params: Params = None) -> ExecResult:
        """Run a write statement on a pooled connection; return rowcount and lastrowid."""
        with self.connection() as conn:
            return conn.execute(sql, params)

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> ExecResult:
        """Run one statement per parameter set on a pooled connection."""
        with self.connection() as conn:
            return conn.executemany(sql, seq_of_params)

    def stats(self) -> Storage:
        """Pool counters: size, in_use, idle, overflow, waiting, connects, discards, timeouts."""
        return self._get_pool().stats()

    def close(self) -> None:
        """Close the idle connections; connections in use are closed when returned.

        A later query starts a fresh pool.
        """
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close_idle()
