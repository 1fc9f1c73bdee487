"""web.py's SQL building blocks: ``SQLQuery``, ``SQLParam``, ``reparam`` and friends.

A query is a list of text pieces and ``SQLParam`` values. ``query(paramstyle)``
gives the text with the driver's markers, ``values()`` the values that travel
as driver parameters; ``str(query)`` renders the values inline for display and
``_test=True`` only (never for execution). ``reparam("x = $x", vars)``
interpolates ``$name``, ``$name.attr``, ``$name[key]`` and ``${expr}`` by name
lookup, attribute and item access alone: nothing is evaluated as code.
"""

from __future__ import annotations

import ast
import datetime
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "SQLLiteral",
    "SQLParam",
    "SQLQuery",
    "UnknownParamstyle",
    "reparam",
    "sqlify",
    "sqllist",
    "sqlliteral",
    "sqlors",
    "sqlparam",
    "sqlquote",
    "sqlwhere",
]


class UnknownParamstyle(Exception):
    """The driver's paramstyle is not one of qmark, numeric, format, pyformat."""


_MARKERS = {"qmark": "?", "numeric": ":1", "format": "%s", "pyformat": "%s", None: "%s"}


class SQLParam:
    """A value in a query: sent to the driver as a parameter, never spliced into the text."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def get_marker(self, paramstyle: str | None = "pyformat") -> str:
        """The placeholder for this parameter in ``paramstyle``."""
        try:
            return _MARKERS[paramstyle]
        except KeyError:
            raise UnknownParamstyle(paramstyle) from None

    def sqlquery(self) -> SQLQuery:
        """This parameter alone, as a query."""
        return SQLQuery([self])

    def __add__(self, other: Any) -> SQLQuery:
        return self.sqlquery() + other

    def __radd__(self, other: Any) -> SQLQuery:
        return other + self.sqlquery()  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return str(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SQLParam) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<param: {self.value!r}>"


sqlparam = SQLParam


class SQLLiteral:
    """SQL text that ``sqlquote`` and the query builders insert as is (``SQLLiteral("NOW()")``)."""

    def __init__(self, v: str) -> None:
        self.v = v

    def __repr__(self) -> str:
        return f"<literal: {self.v!r}>"


sqlliteral = SQLLiteral


class SQLQuery:
    """A query under construction: text pieces and ``SQLParam`` values, joined with ``+``."""

    __slots__ = ("items",)

    def __init__(self, items: Any = None) -> None:
        if items is None:
            self.items: list[Any] = []
        elif isinstance(items, list):
            self.items = items
        elif isinstance(items, SQLQuery):
            self.items = list(items.items)
        else:
            self.items = [items]
        # A parameter holding an SQLLiteral is the literal's text.
        for i, item in enumerate(self.items):
            if type(item) is SQLParam and isinstance(item.value, SQLLiteral):
                self.items[i] = item.value.v

    def append(self, value: Any) -> None:
        """Add one text piece or parameter at the end."""
        self.items.append(value)

    def __add__(self, other: Any) -> SQLQuery:
        if isinstance(other, str):
            return _query([*self.items, other])
        if isinstance(other, SQLQuery):
            return SQLQuery(self.items + other.items)
        return NotImplemented

    def __radd__(self, other: Any) -> SQLQuery:
        if isinstance(other, str):
            return _query([other, *self.items])
        if isinstance(other, SQLQuery):
            return SQLQuery(other.items + self.items)
        return NotImplemented

    def __iadd__(self, other: Any) -> SQLQuery:
        if isinstance(other, (str, SQLParam)):
            self.items.append(other)
        elif isinstance(other, SQLQuery):
            self.items.extend(other.items)
        else:
            return NotImplemented
        return self

    def __len__(self) -> int:
        return len(self.query())

    def __bool__(self) -> bool:
        # PERF: truth without rendering the text (same answer as len() > 0).
        for item in self.items:
            if type(item) is SQLParam or (item if type(item) is str else str(item)):
                return True
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SQLQuery) and other.items == self.items

    __hash__ = None  # type: ignore[assignment]

    def query(self, paramstyle: str | None = None) -> str:
        """The SQL text with ``paramstyle``'s markers where the parameters go."""
        marker = _MARKERS.get(paramstyle)
        if marker is None:
            raise UnknownParamstyle(paramstyle)
        # PERF: one comprehension per style instead of a loop with branches.
        if paramstyle in ("format", "pyformat"):
            return "".join([marker if type(item) is SQLParam else _escaped(item)
                            for item in self.items])
        return "".join([marker if type(item) is SQLParam else
                        (item if type(item) is str else _text(item)) for item in self.items])

    def values(self) -> list[Any]:
        """The parameter values, in marker order."""
        return [item.value for item in self.items if type(item) is SQLParam]

    @staticmethod
    def join(
        items: Iterable[Any],
        sep: str = " ",
        prefix: str | None = None,
        suffix: str | None = None,
        target: SQLQuery | None = None,
    ) -> SQLQuery:
        """Join queries and text with ``sep`` (into ``target`` when given)."""
        if target is None:
            target = SQLQuery()
        out = target.items
        if prefix:
            out.append(prefix)
        for i, item in enumerate(items):
            if i and sep != "":
                out.append(sep)
            if isinstance(item, SQLQuery):
                out.extend(item.items)
            elif isinstance(item, str) and item == "":
                continue
            else:
                out.append(item)
        if suffix:
            out.append(suffix)
        return target

    def _render(self) -> str:
        # For display only: the values shown inline, quoted as web.py shows them.
        text = self.query()
        try:
            return text % tuple(sqlify(v) for v in self.values())
        except (ValueError, TypeError):
            return text

    def __str__(self) -> str:
        return self._render()

    def __repr__(self) -> str:
        return f"<sql: {self._render()!r}>"


def _query(items: list[Any]) -> SQLQuery:
    """PERF: a query from items already normalised (no SQLLiteral scan)."""
    q = SQLQuery.__new__(SQLQuery)
    q.items = items
    return q


def _escaped(item: Any) -> str:
    # A literal % is doubled for format styles, unless the piece already
    # looks escaped (web.py's rule, kept for ported queries).
    text = item if type(item) is str else _text(item)
    if "%" in text and "%%" not in text:
        return text.replace("%", "%%")
    return text


def _text(item: Any) -> str:
    if isinstance(item, bytes):
        return item.decode("utf-8")
    return str(item)


def sqlify(obj: Any) -> str:
    """How a value is shown inline in ``str(query)`` (display and ``_test`` only)."""
    if obj is None:
        return "NULL"
    if obj is True:
        return "'t'"
    if obj is False:
        return "'f'"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, datetime.datetime):
        return repr(obj.isoformat())
    return repr(obj)


def _sqllist(values: Any) -> SQLQuery:
    if isinstance(values, set):
        values = list(values)
    elif isinstance(values, tuple):
        values = list(set(values))  # web.py's rule: a tuple loses duplicates
    items: list[Any] = ["("]
    for i, v in enumerate(values):
        if i:
            items.append(", ")
        items.append(SQLParam(v))
    items.append(")")
    return SQLQuery(items)


def sqlquote(a: Any) -> SQLQuery:
    """``a`` as a parameter (a list, tuple or set as ``(v1, v2, ...)``)."""
    if isinstance(a, (list, tuple, set)):
        return _sqllist(a)
    if isinstance(a, SQLLiteral):
        return _query([a.v])
    return _query([SQLParam(a)])


def sqllist(lst: str | Iterable[str]) -> str:
    """Names joined with ``", "`` (a string stays as it is)."""
    if isinstance(lst, str):
        return lst
    return ", ".join(lst)


def sqlors(left: str, lst: Any) -> SQLQuery:
    """``(left v1 OR left v2 ... OR 1=2)`` with each value a parameter."""
    if isinstance(lst, (list, tuple, set, frozenset)) or _is_iterator(lst):
        lst = list(lst)
        if not lst:
            return SQLQuery("1=2")
        if len(lst) == 1:
            return left + SQLParam(lst[0])
        items: list[Any] = ["("]
        for x in lst:
            items += [left, SQLParam(x), " OR "]
        items.append("1=2)")
        return SQLQuery(items)
    return left + SQLParam(lst)


def _is_iterator(obj: Any) -> bool:
    return hasattr(obj, "__next__") and hasattr(obj, "__iter__")


def sqlwhere(data: Iterable[tuple[str, Any]], grouping: str = " AND ") -> SQLQuery:
    """``k1 = v1 AND k2 = v2`` from (name, value) pairs, each value a parameter."""
    items: list[Any] = []
    for k, v in data:
        if items:
            items.append(grouping)
        items.append(k + " = ")
        items.append(v.v if isinstance(v, SQLLiteral) else SQLParam(v))
    return _query(items)


# ----------------------------------------------------------------- $name interpolation
# Written here rather than taken from web.py: a template is parsed once and its
# compiled form cached, so the common case (the same query text each request)
# costs one dict lookup and one value lookup per $name.

_NAMECHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_LITERAL_START = frozenset("0123456789\"'.")
_TOKEN = re.compile(
    r"""[uUbB]?[rR]?'[^\n'\\]*(?:\\.[^\n'\\]*)*'"""
    r'''|[uUbB]?[rR]?"[^\n"\\]*(?:\\.[^\n"\\]*)*"'''
    r"|0[xX][\da-fA-F]+|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?[jJ]?"
    r"|[A-Za-z_]\w*"
)

# An expression is a nested tuple: ("name", str) | ("lit", value) |
# ("attr", expr, str) | ("item", expr, expr).
_Expr = tuple[Any, ...]


class ReparamError(ValueError):
    """A ``$`` expression in a query could not be parsed."""


class _Parser:
    __slots__ = ("text", "pos")

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def parse(self) -> tuple[Any, ...]:
        text = self.text
        parts: list[Any] = []
        chunk_start = 0
        n = len(text)
        while True:
            dollar = text.find("$", self.pos)
            if dollar < 0 or dollar + 1 >= n:
                break
            nxt = text[dollar + 1]
            if nxt in _NAMECHARS:
                parts.append(text[chunk_start:dollar])
                self.pos = dollar + 1
                parts.append(self.expr())
                chunk_start = self.pos
            elif nxt == "{":
                saved = self.pos
                self.pos = dollar + 2
                expr = self.expr()
                if self.pos < n and text[self.pos] == "}":
                    parts.append(text[chunk_start:dollar])
                    parts.append(expr)
                    self.pos += 1
                    chunk_start = self.pos
                else:
                    self.pos = saved
                    break
            else:
                # "$$" is one literal "$"; any other "$" stays as it is.
                parts.append(text[chunk_start:dollar + 1])
                self.pos = dollar + (2 if nxt == "$" else 1)
                chunk_start = self.pos
        parts.append(text[chunk_start:])
        return tuple(p for p in parts if not isinstance(p, str) or p)

    def token(self) -> str:
        m = _TOKEN.match(self.text, self.pos)
        if m is None:
            raise ReparamError(f"unfinished expression in {self.text!r} at char {self.pos}")
        self.pos = m.end()
        return m.group()

    def expr(self) -> _Expr:
        tok = self.token()
        # A number or a quoted string is a literal (parsed as data, never run).
        node: _Expr = ("lit", ast.literal_eval(tok)) if tok[0] in _LITERAL_START else ("name", tok)
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c == "." and self.pos + 1 < n and text[self.pos + 1] in _NAMECHARS:
                self.pos += 1
                node = ("attr", node, self.token())
            elif c == "[":
                saved = self.pos
                self.pos += 1
                key = self.expr()
                if self.pos < n and text[self.pos] == "]":
                    self.pos += 1
                    node = ("item", node, key)
                else:
                    self.pos = saved
                    break
            else:
                break
        return node


def _eval(node: _Expr, mapping: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "name":
        return mapping[node[1]]
    if kind == "lit":
        return node[1]
    if kind == "attr":
        return getattr(_eval(node[1], mapping), node[2])
    return _eval(node[1], mapping)[_eval(node[2], mapping)]


_templates: dict[str, tuple[Any, ...]] = {}
_TEMPLATE_CACHE_SIZE = 2048


def _compile(text: str) -> tuple[Any, ...]:
    parts = _templates.get(text)
    if parts is None:
        parts = _Parser(text).parse()
        if len(_templates) >= _TEMPLATE_CACHE_SIZE:
            _templates.clear()  # bounded: queries built from changing text cannot grow it
        _templates[text] = parts
    return parts


def reparam(string_: str, dictionary: Mapping[str, Any]) -> SQLQuery:
    """Interpolate ``$name`` expressions of ``string_`` from ``dictionary`` as parameters."""
    parts = _compile(string_)
    if len(parts) == 1 and type(parts[0]) is str:
        return _query([parts[0]])  # PERF: no $ in the text
    items: list[Any] = []
    for part in parts:
        if type(part) is str:
            items.append(part)
            continue
        # SECURITY: the value becomes a driver parameter (or a list of them);
        # only an SQLLiteral the application built itself becomes SQL text.
        value = _eval(part, dictionary)
        if isinstance(value, (list, tuple, set)):
            items.extend(_sqllist(value).items)
        elif isinstance(value, SQLLiteral):
            items.append(value.v)
        else:
            items.append(SQLParam(value))
    return _query(items)
