"""``web.database()``: a URL or keywords to a ``DB`` on the right backend."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from webmini.stores.pool import _url_bool_or_float
from webmini.webpy._dbapi import DB, UnknownDB

__all__ = ["database", "dburl2dict", "register_database"]


_POOL_TYPES: dict[str, Any] = {
    "pool_size": int,
    "max_overflow": int,
    "acquire_timeout": float,
    "connect_timeout": float,
    "read_timeout": float,
    "write_timeout": float,
    "recycle": float,
    "timeout": float,
    "port": int,
    "charset": str,
    "unix_socket": str,
    "unix_sock": str,
    "ssl": str,
    "ssl_ca": str,
    "application_name": str,
}


def _url_value(key: str, value: str) -> Any:
    if key == "pre_ping":
        return _url_bool_or_float(value)
    if key not in _POOL_TYPES:
        raise ValueError(f"unknown database URL option {key!r}")
    return _POOL_TYPES[key](value)


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
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        out[key] = _url_value(key, value)
    return out


def _mysql(**kw: Any) -> DB:
    from webmini.stores.mysql import Database
    from webmini.webpy._dbconn import MySQLBackend

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
    from webmini.webpy._dbconn import SqliteBackend

    kw.pop("pooling", None)
    driver = kw.pop("driver", None)
    if driver not in (None, "sqlite3"):
        raise UnknownDB(f"sqlite driver {driver!r}: webmini uses sqlite3")
    path = kw.pop("db", None) or kw.pop("database", None)
    if not path:
        raise ValueError("dbn='sqlite' needs db='<file>'")
    return DB(SqliteBackend(path, **kw), {"dbn": "sqlite", "db": path})


def _postgres(**kw: Any) -> DB:
    from webmini.webpy._dbconn import PostgresBackend

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
