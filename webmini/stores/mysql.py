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
import operator
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from types import ModuleType
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from webmini._extras import gevent_patched, require

with require("mysql", "webmini.stores.mysql"):
    import gevent
    import pymysql

from webmini.errors import ServiceUnavailable
from webmini.storage import Storage
from webmini.stores.backend import Backend, Link, Outcome, run_statement
from webmini.stores.pool import (
    SSL_MODES,
    ConnectError,
    Pool,
    Pooled,
    PoolTimeout,
    TLSContext,
    is_local,
    url_options,
)
from webmini.stores.watchdog import StatementWatchdog

__all__ = [
    "ConnectError", "Connection", "Database", "DatabaseUnavailable", "ExecResult", "MySQLBackend",
    "PoolTimeout",
]

log = logging.getLogger(__name__)

Params = Sequence[Any] | Mapping[str, Any] | None


class DatabaseUnavailable(ServiceUnavailable, pymysql.err.OperationalError):
    """The connection was lost mid-statement (a server restart, a KILL, the time limit).

    Answered 503 with ``Retry-After`` when a handler lets it through, like
    ``PoolTimeout``; still a pymysql ``OperationalError`` with the driver's
    ``(errno, message)`` as ``args``, so code that catches that keeps working.
    """

    def __init__(self, errno: int, message: str) -> None:
        # SECURITY: the HTTP body stays generic; errno and message are for logs.
        super().__init__("service unavailable", [("Retry-After", "1")])
        self.args = (errno, message)
        self.detail = message


class ExecResult(NamedTuple):
    """What a write statement reports: affected rows and the last AUTO_INCREMENT id."""

    rowcount: int
    lastrowid: int | None


class Connection:
    """One checked-out connection: query helpers bound to it (from ``db.connection()``)."""

    def __init__(self, pooled: Pooled, pool: Pool,
                 watchdog: StatementWatchdog | None = None) -> None:
        self._pooled = pooled
        self._pool = pool
        self._watchdog = watchdog
        self._owner = gevent.getcurrent()
        self._tx_depth = 0
        self._released = False

    @property
    def raw(self) -> Any:
        """The driver's connection (do not close it or keep it past the ``with`` block).

        Statements sent on it directly are bounded by ``read_timeout`` and
        ``write_timeout`` per socket operation, as pymysql does it (the watchdog
        does not see them).
        """
        raw = self._pooled.raw
        watchdog = self._watchdog
        if watchdog is not None and getattr(raw, "_read_timeout", 0) is None:
            # SECURITY: raw use bypasses the statement watchdog: the driver's own
            # socket timeouts bound it instead (kept for this connection's life).
            raw._read_timeout, raw._write_timeout = watchdog.socket_timeouts
        return raw

    def _check(self) -> None:
        if self._released:
            raise pymysql.err.InterfaceError("connection used outside its 'with' block")
        if self._pooled.broken:
            raise pymysql.err.InterfaceError("connection discarded after an earlier error")
        if self._owner is not gevent.getcurrent():
            # Two greenlets interleaving on one socket would corrupt the protocol.
            raise pymysql.err.InterfaceError("connection used by a greenlet that does not own it")

    def _failed(self, exc: BaseException, timed_out: bool) -> BaseException:
        """The connection is no longer trusted; return the exception to raise for ``exc``."""
        self._pooled.broken = True
        if timed_out or _is_disconnect(exc):
            self._pool.suspect_before = time.monotonic()
        if timed_out:
            assert self._watchdog is not None
            return DatabaseUnavailable(
                2013, f"Lost connection to MySQL server during query (timed out: the "
                      f"statement ran longer than {self._watchdog.limit:g} s)")
        if isinstance(exc, pymysql.err.OperationalError) and not isinstance(
                exc, DatabaseUnavailable) and _is_disconnect(exc):
            return DatabaseUnavailable(exc.args[0], str(exc.args[1]) if len(exc.args) > 1 else "")
        if isinstance(exc, ConnectionError):
            return DatabaseUnavailable(
                2013, f"Lost connection to MySQL server during query ({exc})")
        return exc

    def _run(self, sql: str, params: Params, consume: Any, many: list[Any] | None = None) -> Any:
        # PERF: what _call(operation) does, written out: no closure per statement.
        self._check()
        pooled, watchdog = self._pooled, self._watchdog
        if watchdog is not None:
            watchdog.begin(pooled)
        try:
            # PERF: one cursor per driver connection, kept while it lives: DB-API
            # cursors are reusable, and the driver drains any unread result before
            # the next statement (a cursor per statement cost ~1 µs to build and close).
            cursor = pooled.cursor
            if cursor is None:
                cursor = pooled.cursor = pooled.raw.cursor()
            # SECURITY: values travel as parameters escaped by the driver, never
            # formatted into the SQL text by webmini.
            if many is not None:
                cursor.executemany(sql, many)
            else:
                cursor.execute(sql, params)
            result = consume(cursor)
        except BaseException as exc:
            # Whatever happened (server error, lost connection, time limit,
            # gevent.Timeout, GreenletExit), the connection's state is no longer
            # trusted.
            error = self._failed(exc, watchdog is not None and watchdog.end(pooled))
            if error is exc:
                raise
            raise error from exc
        if watchdog is not None and watchdog.end(pooled):
            pooled.broken = True  # answered as the watchdog shut its socket: not reusable
        return result

    def _timed(self, operation: Any) -> Any:
        """Run ``operation(raw)`` as one statement timed by the pool's watchdog.

        Past the time limit it raises DatabaseUnavailable (errno 2013; the
        connection is discarded); other errors propagate unchanged and the caller decides
        (web.database keeps a connection after a constraint violation).
        """
        pooled, watchdog = self._pooled, self._watchdog
        if watchdog is None:
            return operation(pooled.raw)
        watchdog.begin(pooled)
        try:
            result = operation(pooled.raw)
        except BaseException as exc:
            if watchdog.end(pooled):
                raise self._failed(exc, True) from exc
            raise
        if watchdog.end(pooled):
            pooled.broken = True  # answered as the watchdog shut its socket: not reusable
        return result

    def _call(self, operation: Any) -> Any:
        """``_timed(operation)`` (BEGIN, COMMIT), the connection discarded on any error."""
        try:
            return self._timed(operation)
        except BaseException as exc:
            error = self._failed(exc, False)
            if error is exc:
                raise
            raise error from exc

    def query(self, sql: str, params: Params = None) -> list[Storage]:
        """Run a statement and return every row as a Storage (dict with attributes)."""
        return self._run(sql, params, _rows)  # type: ignore[no-any-return]

    def query_one(self, sql: str, params: Params = None) -> Storage | None:
        """Run a statement and return its first row, or None when there is none."""
        return self._run(sql, params, _first_row)  # type: ignore[no-any-return]

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


def _first_row(cursor: Any) -> Storage | None:
    description = cursor.description
    row = cursor.fetchone() if description is not None else None
    if row is None:
        return None
    return Storage(zip([d[0] for d in description], row, strict=True))


# CR_SERVER_GONE_ERROR, CR_SERVER_LOST, ER_CONNECTION_KILLED, CR_SERVER_LOST_EXTENDED
_DISCONNECT_CODES = frozenset({2006, 2013, 1927, 2055})


def _is_disconnect(exc: BaseException) -> bool:
    """True when ``exc`` says the server closed or lost the connection."""
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    if isinstance(exc, pymysql.err.OperationalError):
        return bool(exc.args) and exc.args[0] in _DISCONNECT_CODES
    return isinstance(exc, ConnectionError)


def _shut_socket(pooled: Any) -> None:
    """Abort a statement past its time limit: its greenlet sees the connection lost."""
    sock = getattr(pooled.raw, "_sock", None)
    if sock is not None:
        sock.shutdown(socket.SHUT_RDWR)


_BEGIN = operator.methodcaller("begin")
_COMMIT = operator.methodcaller("commit")


def _exec_result(cursor: Any) -> ExecResult:
    return ExecResult(cursor.rowcount, cursor.lastrowid)


#: The URL options ``Database.from_url`` takes (typed by ``pool.url_options``).
_URL_OPTIONS = frozenset({
    "pool_size", "max_overflow", "acquire_timeout", "connect_timeout", "read_timeout",
    "write_timeout", "recycle", "pre_ping", "charset", "unix_socket", "ssl", "ssl_ca",
})


class Database:
    """A lazily created, per-process pool of MySQL/MariaDB connections with query helpers.

    ``pool_size`` connections are kept; up to ``max_overflow`` more are opened
    under load and closed when returned. ``acquire_timeout`` bounds the wait for
    a free slot and ``connect_timeout`` bounds opening or pre-pinging a
    connection, so a checkout takes at most their sum. ``read_timeout``
    bounds each statement, from sending it to reading its last row
    (``write_timeout`` does when ``read_timeout`` is off): one watchdog
    greenlet per pool ends a statement past it (``DatabaseUnavailable``, errno
    2013, the connection discarded), instead of pymysql's socket timeouts, which under
    gevent arm a timer for every socket wait; a driver connection used
    directly (``conn.raw``) gets them as pymysql's socket timeouts. A connection
    older than ``recycle`` seconds is replaced at checkout. ``pre_ping`` (a
    number, 1.0 by default) pings a connection at checkout when it sat idle at
    least that many seconds, or was idle when another connection of the pool
    found the server gone (a restart, a KILL); ``True`` pings at every
    checkout (a round trip each: it halves a primary-key SELECT's
    throughput); ``False`` never pings. ``driver`` is a DB-API
    module taking pymysql's connect() keywords (pymysql, the default, is the
    one that cooperates with gevent).

    ``ssl`` is the TLS mode: ``disabled``; ``preferred`` (TLS when the server
    offers it, unverified); ``required`` (TLS or no connection, unverified);
    ``verify`` (TLS with the certificate checked against ``ssl_ca`` or the
    system CAs, and the host name). The default is ``disabled`` over a unix
    socket or to a loopback address and ``verify`` to any other host. The
    pool builds one SSLContext, once, off the hub (pymysql alone builds one per
    connect, a ~25 ms blocking call that stalls every greenlet of the worker).
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
        pre_ping: bool | float = 1.0,
        driver: ModuleType | None = None,
        connect_args: Mapping[str, Any] | None = None,
        ssl: str | None = None,
        ssl_ca: str | None = None,
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
        mode = ssl or ("disabled" if is_local(host, unix_socket) else "verify")
        if mode not in SSL_MODES:
            raise ValueError(f"ssl must be one of {', '.join(SSL_MODES)}, not {mode!r}")
        self.ssl_mode, self.ssl_ca = mode, ssl_ca
        self._tls = TLSContext(mode, ssl_ca)
        self._connect_args = self._driver_args(password, charset, dict(connect_args or {}))
        self._pool: Pool | None = None
        self._watchdog: StatementWatchdog | None = None
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
        # PERF: pymysql gets no socket timeouts: under gevent each would arm a
        # timer per socket wait; the pool's StatementWatchdog bounds statements.
        if self.read_timeout and self.driver is not pymysql:
            args["read_timeout"] = self.read_timeout
        if self.write_timeout and self.driver is not pymysql:
            args["write_timeout"] = self.write_timeout
        if self.driver is not pymysql:  # C drivers take whole seconds
            for key in ("connect_timeout", "read_timeout", "write_timeout"):
                if key in args:
                    args[key] = max(1, math.ceil(args[key]))
        if self.driver is pymysql and self.ssl_mode == "disabled":
            args["ssl_disabled"] = True
        args.update(extra)
        return args

    def _open(self) -> Any:
        """Open one driver connection with the pool's TLS settings."""
        args = self._connect_args
        if (
            self.driver is not pymysql
            or self.ssl_mode == "disabled"
            or any(key.startswith("ssl") for key in args)  # TLS set by hand in connect_args
        ):
            return self.driver.connect(**args)
        ctx = self._tls.get()
        if self.ssl_mode != "preferred":
            return self.driver.connect(**args, ssl=ctx)
        # pymysql's "preferred" mode (TLS if offered), given the pool's context
        # instead of the one it would build for every connect.
        raw = self.driver.connect(**args, ssl_disabled=True, defer_connect=True)
        raw.ssl, raw._ssl_required, raw.ctx = True, False, ctx
        raw.connect()
        return raw

    @staticmethod
    def _ping(raw: Any) -> None:
        """Check a pooled connection before reuse (raises when it is gone)."""
        raw.ping(reconnect=False)

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
        kwargs.update(url_options(parts.query, _URL_OPTIONS))
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        # SECURITY: never show the password.
        return f"<Database {self.user}@{self._where()}/{self.database or ''}>"

    def _where(self) -> str:
        return self.unix_socket or f"{self.host}:{self.port}"

    def _get_pool(self) -> Pool:
        pool = self._pool
        if pool is None or pool.pid != os.getpid():
            # First use in this process (e.g. a freshly forked uWSGI worker): a
            # new pool. The parent's connections are left alone, never closed.
            pool = self._pool = Pool(self)
            self._watchdog = self._new_watchdog()
        return pool

    def _new_watchdog(self) -> StatementWatchdog | None:
        """The time limit of this process's statements (pymysql only: C drivers block the
        hub, so no greenlet could watch them; they get socket timeouts instead)."""
        limit = self.read_timeout or self.write_timeout
        if not limit or self.driver is not pymysql:
            return None
        return StatementWatchdog(limit, _shut_socket,
                                 socket_timeouts=(self.read_timeout or None,
                                                  self.write_timeout or None))

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
        conn = Connection(pooled, pool, self._watchdog)
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
                conn._call(_BEGIN)
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
                conn._call(_COMMIT)

    def _rollback(self, conn: Connection) -> None:
        """Best-effort ROLLBACK, bounded in time; the connection is discarded anyway."""
        conn._pooled.broken = True
        with gevent.Timeout(min(self.connect_timeout, 1.0), False), suppress(Exception):
            conn._pooled.raw.rollback()

    def _once(self, sql: str, params: Params, consume: Any) -> Any:
        """One statement on a connection checked out for it alone (or the bound one)."""
        current = self._current()
        if current is not None:
            return current._run(sql, params, consume)
        # PERF: what connection() does, minus binding the connection to the
        # context: no user code runs while one statement does, so nothing can
        # nest (saves the generator context manager and the ContextVar set/reset).
        pool = self._get_pool()
        pooled = pool.acquire()
        conn = Connection(pooled, pool, self._watchdog)
        ok = False
        try:
            result = conn._run(sql, params, consume)
            ok = True
            return result
        finally:
            conn._released = True
            pool.release(pooled, discard=not ok)

    def query(self, sql: str, params: Params = None) -> list[Storage]:
        """Run a statement on a pooled connection; return every row as a Storage."""
        return self._once(sql, params, _rows)  # type: ignore[no-any-return]

    def query_one(self, sql: str, params: Params = None) -> Storage | None:
        """Run a statement on a pooled connection; return its first row or None."""
        return self._once(sql, params, _first_row)  # type: ignore[no-any-return]

    def execute(self, sql: str, params: Params = None) -> ExecResult:
        """Run a write statement on a pooled connection; return rowcount and lastrowid."""
        return self._once(sql, params, _exec_result)  # type: ignore[no-any-return]

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
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.stop()  # once the statements still running are over
        if pool is not None:
            pool.close_idle()


# ------------------------------------------------------------ web.database


class _MySQLLink(Link):
    __slots__ = ()

    def run(self, sql: str, params: Sequence[Any]) -> Outcome:
        # The pool's statement watchdog bounds it (webmini.stores.watchdog).
        return self.pooled._timed(  # type: ignore[no-any-return]
            lambda raw: run_statement(raw, sql, params))


class MySQLBackend(Backend):
    """``dbn="mysql"`` over webmini's cooperative pymysql pool."""

    dbname = "mysql"
    paramstyle = "pyformat"

    def __init__(self, pool: Database) -> None:
        self.pool = pool
        err = pymysql.err
        self.clean_errors = (
            err.IntegrityError, err.ProgrammingError, err.DataError, err.NotSupportedError,
            err.InternalError,
        )

    def checkout(self) -> Link:
        """Check out a pool connection (joining one this greenlet already holds)."""
        cm: AbstractContextManager[Any] = self.pool.connection()
        conn = cm.__enter__()
        return _MySQLLink(None, conn, cm)  # statements go through conn._timed()

    def checkin(self, link: Link, ok: bool) -> None:
        """Return the connection to the pool (discarded when broken)."""
        if link.broken or not ok:
            link.pooled._pooled.broken = True
        link.extra.__exit__(None, None, None)

    def close(self) -> None:
        """Close the pool's idle connections."""
        self.pool.close()

    def driver_connection(self, link: Link) -> Any:
        """The pymysql connection (bounded by pymysql's socket timeouts, see Connection.raw)."""
        return link.pooled.raw
