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

from webmini.errors import BadRequest
from webmini.headers import as_status

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
    return _assignments([(sqlname(k), v) for k, v in data], grouping)


def _assignments(data: Iterable[tuple[str, Any]], grouping: str) -> SQLQuery:
    """``sqlwhere`` for names already checked."""
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


# ------------------------------------------------------- names, counts and sort keys


class SQLInputError(BadRequest, ValueError):
    """A column name, limit, offset or sort key unfit for SQL: a ValueError answered as 400.

    Raised before anything reaches the database. Coming from a handler it is
    a 400 Bad Request (its body names the problem, never the value); in other
    code it is a ``ValueError``.
    """

    def __init__(self, message: str, public: str = "bad request") -> None:
        # Not HTTPError.__init__: this error is always raised, never built to
        # be dropped, so it must not become the request's "built" error.
        Exception.__init__(self, message)
        self.status = as_status(400)
        self.headers = []
        self.data = public


_PLAIN = r"[A-Za-z_][A-Za-z0-9_$]*"
_PLAIN_NAME = re.compile(rf"{_PLAIN}(?:\.{_PLAIN})?")
# Inside identifier quotes: no quote of either kind, no backslash (an escape
# in MySQL strings), no NUL or control character, no % ? : ; (parameter
# markers and statement ends in some paramstyle or driver).
_INSIDE = r"[^\x00-\x1f\x7f\"`'\\%?:;]+"
_QUOTED_NAME = {
    q: re.compile(rf"(?:{_PLAIN}|{q}{_INSIDE}{q})(?:\.(?:{_PLAIN}|{q}{_INSIDE}{q}))?")
    for q in ('"', "`")
}
#: The identifier quote a name may already carry, per dialect (others: plain names only).
#: SQLite takes backticks: it reads a double-quoted name that matches no column
#: as a string, so ``"x" = 'x'`` would be true for every row.
IDENTIFIER_QUOTE = {"mysql": "`", "postgres": '"', "sqlite": "`"}
_PLAIN_SEEN: set[str] = set()


def sqlname(name: Any, dbname: str | None = None) -> str:
    """``name`` unchanged if it is a column name, else ``SQLInputError`` (400).

    A name is ``col`` or ``table.col`` (ASCII letters, digits, ``_``, ``$``;
    not starting with a digit), or, when ``dbname`` is given, a part already
    quoted in its identifier quotes (MySQL and SQLite `` `Col` ``, PostgreSQL
    ``"Col"``) holding no quote, backslash, control character or ``% ? : ;``.
    Nothing is quoted or rewritten.
    """
    # SECURITY: names are SQL text, never parameters; web.py splices them
    # unchecked, so db.where("t", **web.input()) let a field name write SQL
    # (in MySQL "..." is a string and \" escapes: `"\"." OR 1=1 UNION ... -- "`).
    if type(name) is not str:
        raise SQLInputError(f"not a column name: {name!r:.80}", "bad request: not a column name")
    if name in _PLAIN_SEEN:  # PERF: the same few names, checked once
        return name
    if _PLAIN_NAME.fullmatch(name):
        if len(_PLAIN_SEEN) >= 4096:
            _PLAIN_SEEN.clear()
        _PLAIN_SEEN.add(name)
        return name
    q = IDENTIFIER_QUOTE.get(dbname or "")
    if q is not None and _QUOTED_NAME[q].fullmatch(name):
        return name
    raise SQLInputError(f"not a column name: {name!r:.80}", "bad request: not a column name")


_MAX_COUNT = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def sqlcount(value: Any, keyword: str = "limit") -> Any:
    """``value`` as a whole number >= 0 for LIMIT/OFFSET ("10" -> 10), else ``SQLInputError``.

    An ``SQLLiteral`` is the application's own SQL and passes unchanged.
    """
    # SECURITY: limit and offset often come straight from the query string;
    # web.py sends them raw (a string is a syntax error on MySQL: a 500).
    if isinstance(value, SQLLiteral):
        return value
    number = -1
    if (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and _DIGITS.fullmatch(value)):
        number = int(value)
    if not 0 <= number <= _MAX_COUNT:
        raise SQLInputError(f"{keyword} must be a whole number from 0, not {value!r:.80}",
                            f"bad request: {keyword} must be a whole number")
    return number


_DIRECTIONS = {"asc": "", "desc": " DESC"}


def order_by(
    spec: str | None,
    allowed: Iterable[str] | Mapping[str, str],
    default: str | None = None,
    *,
    strict: bool = True,
) -> str | None:
    """A safe ``order=`` from a client's sort key, checked against ``allowed`` columns.

    ``spec`` is ``"name"``, ``"-name"`` (descending), ``"name desc"`` /
    ``"name asc"``, or several of them separated by commas. ``allowed`` lists
    the column names a client may sort by, or maps each public key to the SQL
    it stands for (``{"age": "people.age"}``). An empty or missing ``spec``
    gives ``default`` (the application's own SQL, returned as is). An unknown
    key or a malformed spec raises ``SQLInputError`` (400), or with
    ``strict=False`` gives ``default``.
    """
    columns: Mapping[str, str] = (
        allowed if isinstance(allowed, Mapping) else {sqlname(c): c for c in allowed})
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return default
    terms = spec.split(",") if isinstance(spec, str) else []
    out: list[str] = []
    # SECURITY: only the application's column text reaches the SQL; the
    # client's string merely selects among it.
    for term in terms if 0 < len(terms) <= len(columns) else ():
        words = term.split()
        if len(words) == 1 and words[0][:1] in "+-" and len(words[0]) > 1:
            key, direction = words[0][1:], ("desc" if words[0][0] == "-" else "asc")
        elif len(words) == 1:
            key, direction = words[0], "asc"
        elif len(words) == 2 and words[1].lower() in _DIRECTIONS:
            key, direction = words[0], words[1].lower()
        else:
            break
        column = columns.get(key)
        if column is None:
            break
        out.append(column + _DIRECTIONS[direction])
    else:
        if out:
            return ", ".join(out)
    if strict:
        keys = ", ".join(map(str, columns))
        raise SQLInputError(f"cannot sort by {spec!r:.80}: allowed are {keys}",
                            "bad request: cannot sort by that")
    return default
