"""Result sets of ``web.database`` queries: web.py's iteration, ``.list()``, ``.first()``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from webmini.storage import Storage

__all__ = ["BaseResultSet", "ResultSet", "SqliteResultSet"]


class BaseResultSet:
    """Rows of a query, each a ``Storage``; iterate once, or ``.list()`` / ``.first()``."""

    __slots__ = ("names", "_rows", "_index")

    def __init__(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.names = names
        self._rows = rows
        self._index = 0

    def __iter__(self) -> Iterator[Storage]:
        return self

    def __next__(self) -> Storage:
        i = self._index
        if i >= len(self._rows):
            raise StopIteration
        self._index = i + 1
        # PERF: the Storage is built only for rows actually read.
        return Storage(zip(self.names, self._rows[i], strict=False))

    def list(self) -> list[Storage]:
        """The remaining rows, as a list."""
        names, start = self.names, self._index
        self._index = len(self._rows)
        return [Storage(zip(names, row, strict=False)) for row in self._rows[start:]]

    def first(self, default: Any = None) -> Any:
        """The next row, or ``default`` when there is none."""
        try:
            return next(self)
        except StopIteration:
            return default

    def __getitem__(self, i: int) -> Storage:
        if not isinstance(i, int) or i < 0:
            raise TypeError("result sets are indexed by a non-negative int")
        if i < self._index:
            raise IndexError(f"already passed {i}")
        if i >= len(self._rows):
            raise IndexError(str(i))
        self._index = i
        return next(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self._rows) - self._index} rows left>"


class ResultSet(BaseResultSet):
    """The rows of a MySQL or PostgreSQL query; ``len()`` is the number of rows."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self._rows)


class SqliteResultSet(BaseResultSet):
    """The rows of a SQLite query: no ``len()`` (as in web.py); true while rows remain."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return self._index < len(self._rows)
