"""Connections for ``web.database``: one backend per ``dbn``, each cooperative under gevent.

A backend hands out a ``Link`` (one connection, one greenlet at a time) and
takes it back. ``Link.run(sql, params)`` executes one statement with the
values as driver parameters and returns its whole outcome (column names, rows,
rowcount, last id), so nothing touches the driver after the call returns.

- ``mysql``: webmini's pymysql pool (``webmini.stores.mysql.Database``).
- ``postgres``: pg8000, pure Python over gevent's patched sockets.
- ``sqlite``: the sqlite3 C library blocks whatever thread calls it, so each
  connection has its own native thread and every call runs there; the calling
  greenlet waits cooperatively and the hub keeps running.
"""

from __future__ import annotations

import datetime
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from webmini._extras import require

with require("gevent", "web.database"):
    import gevent
    import gevent.threadpool

from webmini.stores.pool import (
    SSL_MODES,
    Pool,
    TLSContext,
    force_close,
    is_local,
)

__all__ = ["Backend", "Link", "MySQLBackend", "Outcome", "PostgresBackend", "SqliteBackend"]


class Outcome(NamedTuple):
    """What one statement produced (``names`` is None when it returned no rows)."""

    names: list[str] | None
    rows: list[tuple[Any, ...]]
    rowcount: int
    lastrowid: int | None


def _consume(cursor: Any) -> Outcome:
    if cursor.description is None:
        names, rows = None, []
    else:
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    lastrowid = getattr(cursor, "lastrowid", None)
    return Outcome(names, rows, cursor.rowcount, lastrowid)


def _run_statement(conn: Any, sql: str, params: Sequence[Any]) -> Outcome:
    """One statement on a DB-API connection, its rows fetched."""
    # SECURITY: values travel as parameters bound by the driver, never spliced.
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        return _consume(cursor)
    finally:
        cursor.close()


class Link:
    """One checked-out connection; ``broken`` once its state is no longer trusted."""

    __slots__ = ("raw", "pooled", "broken", "owner", "extra")

    def __init__(self, raw: Any, pooled: Any = None, extra: Any = None) -> None:
        self.raw = raw
        self.pooled = pooled
        self.broken = False
        self.owner = gevent.getcurrent()
        self.extra = extra

    def run(self, sql: str, params: Sequence[Any]) -> Outcome:
        """Execute one statement on this connection (see the backend)."""
        raise NotImplementedError


class Backend:
    """The connections of one ``web.database`` (subclasses per ``dbn``)."""

    dbname = ""
    paramstyle = "format"
    #: Driver errors after which the connection is still in a known state
    #: (the server refused the statement); any other error discards it.
    clean_errors: tuple[type[BaseException], ...] = ()

    def checkout(self) -> Link:
        """A connection for the calling greenlet (bounded wait, 503 on timeout)."""
        raise NotImplementedError

    def checkin(self, link: Link, ok: bool) -> None:
        """Give ``link`` back; ``ok=False`` or a broken link discards the connection."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the idle connections."""

    def driver_connection(self, link: Link) -> Any:
        """The DB-API connection behind ``link`` (web.py's ``db.ctx.db``)."""
        return link.raw

    def _mark(self, link: Link, exc: BaseException) -> None:
        if not isinstance(exc, self.clean_errors):
            link.broken = True


# ---------------------------------------------------------------------------- mysql


class _MySQLLink(Link):
    __slots__ = ()

    def run(self, sql: str, params: Sequence[Any]) -> Outcome:
        # The pool's statement watchdog bounds it (webmini.stores.watchdog).
        return self.pooled._timed(  # type: ignore[no-any-return]
            lambda raw: _run_statement(raw, sql, params))


class MySQLBackend(Backend):
    """``dbn="mysql"`` over webmini's cooperative pymysql pool."""

    dbname = "mysql"
    paramstyle = "pyformat"

    def __init__(self, pool: Any) -> None:
        import pymysql

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


# ----------------------------------------------------------- pooled (sqlite, postgres)


class _PooledBackend(Backend):
    """A ``webmini.stores.pool.Pool`` owner: subclasses open, ping and run."""

    _link_class: type[Link] = Link

    def __init__(self, *, pool_size: int = 10, max_overflow: int = 0,
                 acquire_timeout: float = 5.0, connect_timeout: float = 5.0,
                 recycle: float | None = 3600.0, pre_ping: bool | float = True) -> None:
        if pool_size < 1 or max_overflow < 0:
            raise ValueError("pool_size must be >= 1 and max_overflow >= 0")
        self.pool_size, self.max_overflow = pool_size, max_overflow
        self.acquire_timeout, self.connect_timeout = acquire_timeout, connect_timeout
        self.recycle = recycle if recycle and recycle > 0 else None
        self._ping_after: float | None = (
            None if pre_ping is False else 0.0 if pre_ping is True else float(pre_ping)
        )
        self._pool: Pool | None = None

    def _open(self) -> Any:
        raise NotImplementedError

    def _ping(self, raw: Any) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        raise NotImplementedError

    def _get_pool(self) -> Pool:
        pool = self._pool
        if pool is None or pool.pid != os.getpid():
            pool = self._pool = Pool(self)  # first use in this (possibly forked) process
        return pool

    def checkout(self) -> Link:
        """Take a slot and a live connection (bounded by the pool's timeouts)."""
        pool = self._get_pool()
        pooled = pool.acquire()
        return self._link_class(pooled.raw, pooled, pool)

    def checkin(self, link: Link, ok: bool) -> None:
        """Return the slot; a broken or failed connection is closed, not reused."""
        link.extra.release(link.pooled, discard=link.broken or not ok)

    def close(self) -> None:
        """Close the idle connections (in this process)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close_idle()

    def stats(self) -> Any:
        """The pool's counters (size, in_use, idle, connects, discards, timeouts...)."""
        return self._get_pool().stats()


# ---------------------------------------------------------------------------- sqlite


class _SqliteRaw:
    """A sqlite3 connection and the one native thread that runs all its calls."""

    __slots__ = ("conn", "thread")

    def __init__(self, conn: sqlite3.Connection, thread: gevent.threadpool.ThreadPool) -> None:
        self.conn, self.thread = conn, thread

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(conn, *args)`` in this connection's thread; wait cooperatively."""
        return self.thread.apply(fn, (self.conn, *args))

    def close(self) -> None:
        """Close in the connection's own thread, after anything still running there."""
        self.thread.spawn(self.conn.close)


class InThread:
    """A sqlite3 connection or cursor whose calls run in the connection's thread.

    ``db.ctx.db`` on SQLite: the DB-API as usual (``cursor()``, ``execute()``,
    ``fetchall()``...), each call made where the connection's other calls run,
    never on the hub.
    """

    __slots__ = ("_target", "_raw")

    def __init__(self, target: Any, raw: _SqliteRaw) -> None:
        self._target, self._raw = target, raw

    def __getattr__(self, name: str) -> Any:
        # Reading an attribute (a bound method, rowcount, description) runs no
        # SQLite code; only calls go to the connection's thread.
        value = getattr(self._target, name)
        if not callable(value):
            return value
        raw = self._raw

        def call(*args: Any, **kwargs: Any) -> Any:
            result = raw.call(lambda _conn: value(*args, **kwargs))
            if isinstance(result, sqlite3.Cursor | sqlite3.Connection):
                return InThread(result, raw)
            return result

        return call

    def __iter__(self) -> Iterator[Any]:
        target = self._target
        return iter(self._raw.call(lambda _conn: target.fetchall()))


def _convert_date(value: bytes) -> datetime.date:
    return datetime.date(*map(int, value.split(b"-")))


def _convert_timestamp(value: bytes) -> datetime.datetime:
    date_part, _, time_part = value.partition(b" ")
    year, month, day = map(int, date_part.split(b"-"))
    clock, _, fraction = time_part.partition(b".")
    hours, minutes, seconds = map(int, clock.split(b":"))
    micro = int(fraction.decode()[:6].ljust(6, "0")) if fraction else 0
    return datetime.datetime(year, month, day, hours, minutes, seconds, micro)


def use_explicit_sqlite_types() -> None:
    """Register the date/datetime adapters and converters sqlite3 deprecated in 3.12.

    web.py opens SQLite with ``PARSE_DECLTYPES`` and relies on sqlite3's
    default ``date``/``timestamp`` handling; Python 3.12 deprecated those
    defaults. These give the same values, explicitly (process-wide, as
    sqlite3's registries are).
    """
    sqlite3.register_adapter(datetime.date, lambda d: d.isoformat())
    sqlite3.register_adapter(datetime.datetime, lambda d: d.isoformat(" "))
    sqlite3.register_converter("date", _convert_date)
    sqlite3.register_converter("timestamp", _convert_timestamp)


use_explicit_sqlite_types()


class _SqliteLink(Link):
    __slots__ = ()

    def run(self, sql: str, params: Sequence[Any]) -> Outcome:
        # SECURITY: values are bound by sqlite3 ("?" markers), never spliced.
        # PERF: one thread hop per statement; the rows come back fetched.
        return self.raw.call(_run_statement, sql, params)  # type: ignore[no-any-return]


class SqliteBackend(_PooledBackend):
    """``dbn="sqlite"``: a file (or ``:memory:``), calls kept off the gevent hub."""

    dbname = "sqlite"
    paramstyle = "qmark"
    clean_errors = (sqlite3.Error,)
    _link_class = _SqliteLink

    def __init__(self, db: str, *, timeout: float = 5.0,
                 detect_types: int = sqlite3.PARSE_DECLTYPES, pool_size: int = 5,
                 **pool_args: Any) -> None:
        if db in ("", ":memory:"):
            pool_size = 1  # every connection to :memory: would be a separate database
            pool_args["max_overflow"] = 0
            pool_args["recycle"] = None
        pool_args.setdefault("pre_ping", False)
        super().__init__(pool_size=pool_size, **pool_args)
        self.path, self.timeout, self.detect_types = db, timeout, detect_types

    def _open(self) -> _SqliteRaw:
        # The thread outlives idle spells only for a while; gevent starts it
        # again on the next call. One thread per connection keeps every call
        # of a connection in order, its close included.
        thread = gevent.threadpool.ThreadPool(1, idle_task_timeout=60)
        conn = thread.apply(
            sqlite3.connect,
            (self.path,),
            {
                "timeout": self.timeout,
                "detect_types": self.detect_types,
                "isolation_level": None,  # autocommit; transactions are explicit BEGINs
                "check_same_thread": False,  # the thread varies; one caller at a time
            },
        )
        return _SqliteRaw(conn, thread)

    def _ping(self, raw: Any) -> None:
        raw.call(_run_statement, "SELECT 1", ())

    def _where(self) -> str:
        return f"sqlite:{self.path}"

    def driver_connection(self, link: Link) -> Any:
        """The sqlite3 connection, its calls run in its own thread (see InThread)."""
        return InThread(link.raw.conn, link.raw)


# -------------------------------------------------------------------------- postgres


class _PgLink(Link):
    __slots__ = ()

    def run(self, sql: str, params: Sequence[Any]) -> Outcome:
        # SECURITY: values travel as bind parameters of the extended protocol.
        cursor = self.raw.cursor()
        try:
            if params:
                cursor.execute(sql, tuple(params))
            else:
                # pg8000 sends a statement without parameters as it is; undo the
                # %-doubling of the format paramstyle, as a format driver would.
                cursor.execute(sql.replace("%%", "%"))
            out = _consume(cursor)
            return out._replace(lastrowid=None)
        finally:
            cursor.close()


def _cooperative_scram() -> None:
    """Make SCRAM's key derivation cache its result and run off the hub.

    PostgreSQL's default authentication (SCRAM-SHA-256) derives a key with
    4096 PBKDF2 rounds on every connect, ~1 ms of C code holding the hub; a cold
    pool of 10 stalls every greenlet ~10 ms. The derived key depends only on
    the password, the server's per-user salt and the round count, so it is
    computed once, in a native thread (hashlib releases the GIL), and reused.
    """
    import scramp.core

    original = scramp.core.hi
    if getattr(original, "_webmini", False):
        return

    @functools.lru_cache(maxsize=64)
    def derive(hf: Any, password: bytes, salt: bytes, iterations: int) -> bytes:
        return gevent.get_hub().threadpool.apply(  # type: ignore[no-any-return]
            original, (hf, password, salt, iterations)
        )

    def hi(hf: Any, password: bytes, salt: bytes, iterations: int) -> bytes:
        return derive(hf, bytes(password), bytes(salt), int(iterations))

    hi._webmini = True  # type: ignore[attr-defined]
    scramp.core.hi = hi


class PostgresBackend(_PooledBackend):
    """``dbn="postgres"`` over pg8000 (pure Python: cooperative with gevent's sockets)."""

    dbname = "postgres"
    paramstyle = "format"
    _link_class = _PgLink

    def __init__(self, *, db: str | None = None, user: str | None = None,
                 pw: str | None = None, host: str | None = None, port: int | None = None,
                 unix_sock: str | None = None, read_timeout: float | None = 30.0,
                 ssl: str | None = None, ssl_ca: str | None = None,
                 application_name: str | None = None, **pool_args: Any) -> None:
        try:
            import pg8000.dbapi
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError(
                f"dbn='postgres' needs pg8000 ({exc}): pip install webmini[postgres]"
            ) from exc
        super().__init__(**pool_args)
        _cooperative_scram()
        self.driver = pg8000.dbapi
        # pg8000 reports every server error response as DatabaseError (the
        # connection is fine); network trouble is InterfaceError.
        self.clean_errors = (pg8000.dbapi.DatabaseError,)
        self.host = host or "127.0.0.1"
        self.port = int(port or 5432)
        self.unix_sock = unix_sock
        mode = ssl or ("disabled" if is_local(self.host, unix_sock) else "verify")
        if mode not in SSL_MODES or mode == "preferred":
            raise ValueError(f"postgres ssl must be disabled, required or verify, not {mode!r}")
        self.ssl_mode = mode
        self._tls = TLSContext(mode, ssl_ca)
        self._args: dict[str, Any] = {
            "user": user or "postgres",
            "password": pw,
            "database": db,
            "timeout": read_timeout,
            "application_name": application_name,
        }
        if unix_sock:
            self._args["unix_sock"] = unix_sock
        else:
            self._args["host"], self._args["port"] = self.host, self.port

    def _open(self) -> Any:
        args = dict(self._args)
        # pg8000 takes ssl_context=None as "try TLS" with a new SSLContext per
        # connect (a ~25 ms blocking CA load): False disables TLS, and a
        # context from the pool's TLSContext is built once.
        args["ssl_context"] = False if self.ssl_mode == "disabled" else self._tls.get()
        conn = self.driver.connect(**args)
        try:
            conn.autocommit = True  # transactions are explicit BEGINs
        except BaseException:
            force_close(conn)
            raise
        return conn

    def _ping(self, raw: Any) -> None:
        cursor = raw.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()

    def _where(self) -> str:
        return self.unix_sock or f"{self.host}:{self.port}"
