"""``web.database()``: a URL or keywords to a ``DB`` on the right backend."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from webmini.stores.pool import url_options
from webmini.webpy._dbapi import DB, UnknownDB

__all__ = ["database", "dburl2dict", "register_database"]


def dburl2dict(url: str) -> dict[str, Any]:
    """Parse ``dbn://user:pw@host:port/db?option=value`` into ``database()`` keywords."""
    parts = urlsplit(url)
    out: dict[str, Any]
    if parts.scheme == "sqlite":
        out = {"dbn": "sqlite", "db": unquote(parts.path[1:])}
    else:
        out = {
            "dbn": parts.scheme,
            "user": unquote(parts.username) if parts.username else None,
            "pw": unquote(parts.password) if parts.password else None,
            "db": unquote(parts.path[1:]),
            "host": parts.hostname,
            "port": parts.port,
        }
    out.update(url_options(parts.query))
    return out


def _mysql(**kw: Any) -> DB:
    from webmini.stores.mysql import Database, MySQLBackend

    pool = kw.pop("pool", None)
    if pool is None:
        kw.pop("pooling", None)
        driver = kw.pop("driver", None)
        if driver not in (None, "pymysql"):
            raise UnknownDB(f"mysql driver {driver!r}: webmini uses pymysql (cooperative)")
        args: dict[str, Any] = {
            "host": kw.pop("host", None) or "127.0.0.1",
            "port": int(kw.pop("port", None) or 3306),
            "user": kw.pop("user", None) or "root",
            "password": kw.pop("pw", None) or kw.pop("password", None) or "",
            "database": kw.pop("db", None) or kw.pop("database", None),
        }
        kw.pop("password", None)
        args.update(kw)
        pool = Database(**args)
    return DB(MySQLBackend(pool), {"dbn": "mysql"})


def _sqlite(**kw: Any) -> DB:
    from webmini.stores.sqlite import SqliteBackend

    kw.pop("pooling", None)
    driver = kw.pop("driver", None)
    if driver not in (None, "sqlite3"):
        raise UnknownDB(f"sqlite driver {driver!r}: webmini uses sqlite3")
    path = kw.pop("db", None) or kw.pop("database", None)
    if not path:
        raise ValueError("dbn='sqlite' needs db='<file>'")
    return DB(SqliteBackend(path, **kw), {"dbn": "sqlite", "db": path})


def _postgres(**kw: Any) -> DB:
    from webmini.stores.postgres import PostgresBackend

    kw.pop("pooling", None)
    driver = kw.pop("driver", None)
    if driver not in (None, "pg8000"):
        raise UnknownDB(f"postgres driver {driver!r}: webmini uses pg8000 (cooperative)")
    if "password" in kw:
        kw["pw"] = kw.pop("password")
    if "database" in kw:
        kw["db"] = kw.pop("database")
    return DB(PostgresBackend(**kw), {"dbn": "postgres"})


_databases: dict[str, Any] = {
    "mysql": _mysql,
    "postgres": _postgres,
    "postgresql": _postgres,
    "sqlite": _sqlite,
}


def register_database(name: str, factory: Any) -> None:
    """Register ``factory(**params) -> DB`` for ``database(dbn=name)``."""
    _databases[name] = factory


def database(dburl: str | None = None, **params: Any) -> DB:
    """A ``DB`` from a URL or keywords (``dbn``, ``db``, ``user``, ``pw``, ``host``, ``port``...).

    With neither, the URL comes from ``$DATABASE_URL``.
    """
    if not dburl and not params:
        dburl = os.environ["DATABASE_URL"]
    if dburl:
        params = {**dburl2dict(dburl), **params}

    dbn = params.pop("dbn", None)
    if dbn not in _databases:
        raise UnknownDB(dbn)
    clean = {k: v for k, v in params.items() if v is not None}
    return _databases[dbn](**clean)  # type: ignore[no-any-return]
