"""Todo rows in MySQL, read through a memcached cache keyed by id."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from webmini.stores.cache import Cache
from webmini.stores.mysql import Database

SCHEMA = Path(__file__).with_name("schema.sql")

_COLUMNS = "id, owner, title, done, created_at, updated_at"


def _stamp(value: datetime.datetime) -> str:
    return value.isoformat(timespec="milliseconds") + "Z"


def as_todo(row: Any) -> dict[str, Any]:
    """Turn a ``todos`` row into the JSON object the API (and the cache) holds."""
    return {
        "id": int(row["id"]),
        "owner": row["owner"],
        "title": row["title"],
        "done": bool(row["done"]),
        "created_at": _stamp(row["created_at"]),
        "updated_at": _stamp(row["updated_at"]),
    }


def schema_statements(text: str) -> list[str]:
    """Split ``schema.sql`` into statements (no ``;`` inside literals there)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


class TodoStore:
    """CRUD on the ``todos`` table; single todos are read through the cache."""

    def __init__(self, db: Database, cache: Cache, ttl: int = 300, prefix: str = "todo:") -> None:
        self.db = db
        self.cache = cache
        self.ttl = ttl
        self.prefix = prefix

    def cache_key(self, todo_id: int) -> str:
        """The memcached key of one todo."""
        return f"{self.prefix}{todo_id}"

    def create_schema(self) -> None:
        """Create the table if it is missing."""
        for statement in schema_statements(SCHEMA.read_text(encoding="utf-8")):
            self.db.execute(statement)

    def list(self, owner: str, limit: int = 500) -> list[dict[str, Any]]:
        """The owner's todos, oldest first (straight from the database)."""
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM todos WHERE owner = %s ORDER BY id LIMIT %s",
            (owner, limit),
        )
        return [as_todo(row) for row in rows]

    def get(self, owner: str, todo_id: int) -> dict[str, Any] | None:
        """One todo of ``owner``: from the cache, else from the database (then cached)."""
        key = self.cache_key(todo_id)
        todo = self.cache.get(key)
        if not isinstance(todo, dict):
            row = self.db.query_one(f"SELECT {_COLUMNS} FROM todos WHERE id = %s", (todo_id,))
            if row is None:
                return None
            todo = as_todo(row)
            # A cache that is down only costs the next read a query: set() never raises.
            self.cache.set(key, todo, expire=self.ttl)
        # SECURITY: rows are cached by id for every user; the owner is checked on
        # every read, and someone else's todo looks exactly like a missing one.
        return todo if todo.get("owner") == owner else None

    def create(self, owner: str, title: str, done: bool = False) -> dict[str, Any]:
        """Insert a todo and return it."""
        with self.db.transaction() as tx:
            result = tx.execute(
                "INSERT INTO todos (owner, title, done, created_at, updated_at)"
                " VALUES (%s, %s, %s, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
                (owner, title, done),
            )
            row = tx.query_one(f"SELECT {_COLUMNS} FROM todos WHERE id = %s", (result.lastrowid,))
        assert row is not None
        return as_todo(row)

    def update(self, owner: str, todo_id: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply ``changes`` (title, done) to the owner's todo; None if there is no such todo."""
        # SECURITY: column names come from this fixed list, never from the request.
        columns = [name for name in ("title", "done") if name in changes]
        if not columns:
            raise ValueError("nothing to update: give title and/or done")
        assignments = ", ".join(f"{name} = %s" for name in columns)
        with self.db.transaction() as tx:
            found = tx.query_one(
                "SELECT id FROM todos WHERE id = %s AND owner = %s FOR UPDATE", (todo_id, owner)
            )
            if found is None:
                return None
            tx.execute(
                f"UPDATE todos SET {assignments}, updated_at = UTC_TIMESTAMP(3) WHERE id = %s",
                (*[changes[name] for name in columns], todo_id),
            )
            row = tx.query_one(f"SELECT {_COLUMNS} FROM todos WHERE id = %s", (todo_id,))
        # Invalidate after the commit: deleting earlier would let a concurrent read
        # re-cache the old row before the commit. A read that fetched the old row
        # just before the commit and stores it just after this delete can still
        # serve it for at most ``ttl`` seconds: the price of a plain read-through.
        self.cache.delete(self.cache_key(todo_id))
        assert row is not None
        return as_todo(row)

    def delete(self, owner: str, todo_id: int) -> bool:
        """Delete the owner's todo; False if there was none."""
        result = self.db.execute("DELETE FROM todos WHERE id = %s AND owner = %s", (todo_id, owner))
        if not result.rowcount:
            return False
        self.cache.delete(self.cache_key(todo_id))
        return True
