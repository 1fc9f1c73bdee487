"""PostgreSQL for ``web.database(dbn="postgres")`` over pg8000.

pg8000 is pure Python, so under gevent's patched sockets every query yields
to the hub; SCRAM's key derivation, the one CPU-heavy step of a connect, is
cached and run in a native thread.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from webmini._extras import require

with require("postgres", "webmini.stores.postgres"):
    import gevent
    import pg8000.dbapi

from webmini.stores.backend import Link, Outcome, PooledBackend, consume
from webmini.stores.pool import SSL_MODES, TLSContext, force_close, is_local

__all__ = ["PostgresBackend"]


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
            out = consume(cursor)
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


class PostgresBackend(PooledBackend):
    """``dbn="postgres"`` over pg8000 (pure Python: cooperative with gevent's sockets)."""

    dbname = "postgres"
    paramstyle = "format"
    _link_class = _PgLink

    def __init__(self, *, db: str | None = None, user: str | None = None,
                 pw: str | None = None, host: str | None = None, port: int | None = None,
                 unix_sock: str | None = None, read_timeout: float | None = 30.0,
                 ssl: str | None = None, ssl_ca: str | None = None,
                 application_name: str | None = None, **pool_args: Any) -> None:
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
