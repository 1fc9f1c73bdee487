"""What every peer shares: the database URL, TFB's rules on ``queries``, the batch UPDATE."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_URL = "mysql://benchmarkdbuser:benchmarkdbpass@127.0.0.1:3306/hello_world"
DATABASE_URL = os.environ.get("TFB_DATABASE_URL", DEFAULT_URL)
POOL_SIZE = 10
ADDITIONAL = "Additional fortune added at request time."
WORLD_SQL = "SELECT id, randomNumber FROM World WHERE id = %s"
FORTUNE_SQL = "SELECT id, message FROM Fortune"


def db_params() -> dict[str, Any]:
    """pymysql/aiomysql keywords for ``TFB_DATABASE_URL``."""
    parts = urlsplit(DATABASE_URL)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or ""), "password": unquote(parts.password or ""),
            "db": parts.path.lstrip("/"), "charset": "utf8mb4", "autocommit": True}


def sqlalchemy_url() -> str:
    """``TFB_DATABASE_URL`` as SQLAlchemy's ``mysql+pymysql://`` URL."""
    return "mysql+pymysql://" + DATABASE_URL.split("://", 1)[1] + "?charset=utf8mb4"


def clamp(raw: Any) -> int:
    """``queries`` clamped to 1..500 (missing or not a number: 1)."""
    try:
        n = int(raw)
    except (TypeError, ValueError):
        return 1
    return 1 if n < 1 else 500 if n > 500 else n


def update_sql(n: int, style: str = "%s") -> str:
    """One UPDATE for n rows (TFB allows batching); ``style`` is the placeholder."""
    return ("UPDATE World SET randomNumber = CASE id " + f"WHEN {style} THEN {style} " * n
            + "END WHERE id IN (" + ",".join([style] * n) + ")")


def update_params(worlds: list[dict[str, int]]) -> list[int]:
    """Parameters for ``update_sql``: (id, number) pairs, then the ids."""
    params: list[int] = []
    for w in worlds:
        params += (w["id"], w["randomNumber"])
    return params + [w["id"] for w in worlds]
