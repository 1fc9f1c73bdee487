"""The URL table: compiled once, matched against whole paths.

A table is web.py's flat sequence ``(pattern, target, pattern, target, ...)``.
Targets are handler classes (or their names), callables, ``"redirect /x"``
strings with backrefs, or sub-applications mounted by literal prefix.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

HANDLER = 0
REDIRECT = 1
SUBAPP = 2

_REGEX_CHARS = frozenset(".^$*+?{}[]\\|()")
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
# The regex parser's tree (re._parser, sre_parse before 3.11): private, so
# imported by name and read defensively.
_sre: Any = importlib.import_module("re._parser")
_REPEATS = frozenset(str(getattr(_sre, n, n)) for n in ("MAX_REPEAT", "MIN_REPEAT"))
_UNBOUNDED = int(getattr(_sre, "MAXREPEAT", 2**32 - 1))


def is_static(pattern: str) -> bool:
    """Tell whether ``pattern`` has no regex syntax, so it matches only itself."""
    return not any(ch in _REGEX_CHARS for ch in pattern)


def pairs(mapping: Any) -> list[tuple[str, Any]]:
    """Turn a web.py URL table (flat or of pairs) into a list of (pattern, target)."""
    items = list(mapping)
    if items and all(isinstance(x, (tuple, list)) and len(x) == 2 for x in items):
        return [(str(p), t) for p, t in items]
    if len(items) % 2:
        raise ValueError(
            f"webmini: the URL table needs (pattern, target) pairs: {_unpaired(items)}")
    return [(str(items[i]), items[i + 1]) for i in range(0, len(items), 2)]


def _unpaired(items: list[Any]) -> str:
    """Name the first entry of an odd-length flat URL table that has no target."""
    for i in range(0, len(items) - 1, 2):
        target = items[i + 1]
        if isinstance(target, str) and target.startswith("/") and not target.startswith(
                "redirect "):
            return (f"item {i + 1} ({items[i]!r}) has no target: it is followed by the pattern "
                    f"{target!r}")
    return f"item {len(items)} ({items[-1]!r}), the last, has no target"


class Route:
    """One row of the URL table and how to call its target."""

    __slots__ = ("pattern", "target", "kind", "regex", "groups")

    def __init__(self, pattern: str, target: Any, is_subapp: bool) -> None:
        self.pattern = pattern
        self.target = target
        if is_subapp:
            self.kind = SUBAPP
            # web.py mounts sub-applications on a literal prefix.
            self.regex = re.compile(re.escape(pattern) + r"(?s:.*)")
        else:
            is_redirect = isinstance(target, str) and target.startswith("redirect ")
            self.kind = REDIRECT if is_redirect else HANDLER
            try:
                self.regex = re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"webmini: bad regex in the URL table: {pattern!r} -> {target!r}: {exc}"
                ) from None
        self.groups = self.regex.groups

    def resolve(self, fvars: Mapping[str, Any]) -> Any:
        """Resolve a handler named by a string (``"Index"`` or ``"pkg.mod.Class"``) once."""
        target = self.target
        if not isinstance(target, str) or self.kind != HANDLER:
            return target
        if target in fvars:
            resolved = fvars[target]
        elif "." in target:
            module_name, _, attr = target.rpartition(".")
            try:
                resolved = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise LookupError(
                    f"webmini: URL table: {self.pattern!r} -> {target!r}: {exc}"
                ) from None
        else:
            raise LookupError(unresolved_message(self.pattern, target, fvars))
        self.target = resolved
        return resolved


def unresolved_message(pattern: str, name: str, fvars: Mapping[str, Any]) -> str:
    """Explain why a handler name in the URL table is not found, with a likely fix."""
    message = f"webmini: URL table: {pattern!r} -> {name!r}, which is not defined"
    if not fvars:
        return message + (
            "; pass the module's names: web.application(urls, globals())"
        )
    classes = [k for k, v in fvars.items() if isinstance(v, type) and not k.startswith("_")]
    close = difflib.get_close_matches(name, classes, n=1, cutoff=0.6)
    if not close:
        lower = {k.lower(): k for k in classes}
        close = [lower[name.lower()]] if name.lower() in lower else []
    if close:
        return message + f"; did you mean {close[0]!r}?"
    return message + " (defined after web.application(...)? or in another module: 'pkg.mod.Class')"


def _children(op: str, av: Any) -> list[Any]:
    """The sub-patterns of one parsed regex node (what may repeat inside it)."""
    if op in _REPEATS or op == "POSSESSIVE_REPEAT":
        return [av[2]]
    if op == "SUBPATTERN":
        return [av[-1]]
    if op == "BRANCH":
        return list(av[1])
    if op == "ATOMIC_GROUP":
        return [av]
    if op in ("ASSERT", "ASSERT_NOT"):
        return [av[1]]
    if op == "GROUPREF_EXISTS":
        return [p for p in av[1:] if p is not None]
    return []


def _has_unbounded(items: Any) -> bool:
    for op, av in items:
        name = str(op)
        if name in _REPEATS and av[1] == _UNBOUNDED:
            return True
        if any(_has_unbounded(child) for child in _children(name, av)):
            return True
    return False


def _nested_unbounded(items: Any) -> bool:
    for op, av in items:
        name = str(op)
        # An unbounded repeat of something that itself repeats without bound:
        # (a+)+, (\w+\s?)*, ((?:[a-z]+)+). A path that almost matches makes the
        # matcher try every way of splitting it: time doubles per character.
        # Possessive repeats and atomic groups never backtrack: not flagged.
        if name in _REPEATS and av[1] == _UNBOUNDED and _has_unbounded(av[2]):
            return True
        if name != "POSSESSIVE_REPEAT" and name != "ATOMIC_GROUP" and any(
                _nested_unbounded(child) for child in _children(name, av)):
            return True
    return False


def backtracks(pattern: str) -> bool:
    """True if ``pattern`` repeats without bound something that repeats without bound.

    Such a regex (``/item/((?:[a-z]+)+)/edit``) may take exponential time on a
    path that nearly matches; it runs in the event loop, where no timeout
    stops it. A heuristic on the parsed regex: ``(?:[a-z]+/)*`` is flagged too
    although its "/" keeps it linear.
    """
    try:
        tree = _sre.parse(pattern)
    except Exception:  # re.compile reports a bad pattern; this is only a warning
        return False
    return _nested_unbounded(tree)


def resolve_or_fail(routes: Iterable[Route], fvars: Mapping[str, Any]) -> list[str]:
    """Resolve every handler name now; raise ValueError naming the missing; return warnings."""
    problems = check_table(routes, fvars)
    missing = [p[len("error: "):] for p in problems if p.startswith("error: ")]
    if missing:
        raise ValueError("webmini: " + "; ".join(missing))
    return problems


def check_table(routes: Iterable[Route], fvars: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Resolve every handler name of a URL table now; return one line per problem found.

    Names defined later than this call are reported too, so call it once the
    module is fully imported (``webmini check`` does).
    """
    problems: list[str] = []
    for route in routes:
        shown = prefix + route.pattern
        if not route.pattern.startswith("/"):
            problems.append(
                f"warning: URL table pattern {shown!r} does not start with '/' "
                "(every path does: it matches none, or not what it seems)"
            )
        if route.kind != SUBAPP and backtracks(route.pattern):
            problems.append(
                f"warning: URL table pattern {shown!r} nests unbounded repeats (as in (a+)+): "
                "matching a long path that nearly fits can take seconds in the event loop; "
                "bound the inner repeat ({1,64}) or make it possessive (a++, Python 3.11+)"
            )
        if route.kind == SUBAPP:
            sub = route.target
            problems.extend(check_table(sub._router.routes, sub.fvars, shown))
            continue
        if route.kind != HANDLER:
            continue
        try:
            target = route.resolve(fvars)
        except LookupError as exc:
            text = str(exc).replace("webmini: ", "", 1)
            # name the route by its full path (a sub-app's prefix included)
            text = text.replace(f"{route.pattern!r} ->", f"{shown!r} ->", 1)
            problems.append(f"error: {text}")
            continue
        if not callable(target):
            problems.append(
                f"error: URL table: {shown!r} -> {target!r} is neither a class nor a callable"
            )
    return problems


def segment_key(route: Route) -> str | None:
    """Return the first path segment every path this route matches must have, if known.

    ``/users/(\\d+)`` gives ``"users"``; a pattern whose literal prefix does not
    name a whole first segment (``/(.*)``, ``/user(s)?``, ``a|b``, a sub-app's
    bare prefix) gives None: it may match under any segment.
    """
    if route.kind == SUBAPP:
        return None
    pattern = route.regex.pattern
    if "|" in pattern:
        return None
    literal: list[str] = []
    for ch in pattern:
        if ch in _REGEX_CHARS:
            if ch in "?*{" and literal:
                literal.pop()  # the character before an optional quantifier
            break
        literal.append(ch)
    prefix = "".join(literal)
    end = prefix.find("/", 1)
    if not prefix.startswith("/") or end < 0:
        return None
    return prefix[1:end]


class _Alternation:
    """Routes tried together: one combined regex when possible, else one by one."""

    __slots__ = ("routes", "regex", "slots")

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self.regex: re.Pattern[str] | None = None
        self.slots: dict[int, tuple[Route, tuple[int, ...]]] = {}
        if not routes or any(_BACKREF.search(r.regex.pattern) for r in routes):
            return
        # PERF: one alternation is matched in C; the outer group that closed
        # last (lastindex) names the route that matched.
        parts = []
        group = 1
        for r in routes:
            self.slots[group] = (r, tuple(range(group + 1, group + 1 + r.groups)))
            parts.append("(" + r.regex.pattern + ")")
            group += 1 + r.groups
        try:
            self.regex = re.compile("|".join(parts))
        except re.error:  # inline flags or duplicate group names: match one by one
            self.regex = None

    def match(self, path: str) -> tuple[Route, tuple[Any, ...]] | None:
        """Return the first route in table order matching the whole path, and its groups."""
        regex = self.regex
        if regex is not None:
            m = regex.fullmatch(path)
            if m is None:
                return None
            route, ids = self.slots[m.lastindex or 0]
            if not ids:
                return route, ()
            if len(ids) == 1:
                return route, (m.group(ids[0]),)
            return route, m.group(*ids)
        for route in self.routes:
            m = route.regex.fullmatch(path)
            if m is not None:
                return route, m.groups()
        return None


class Router:
    """Match a path against the URL table: first match in table order wins."""

    def __init__(self, table: Iterable[tuple[str, Any]], is_subapp: Any) -> None:
        self.routes = [Route(p, t, is_subapp(t)) for p, t in table]
        dynamic = [
            r for r in self.routes if r.kind == SUBAPP or not is_static(r.pattern)
        ]
        keyed = [(r, segment_key(r)) for r in dynamic]
        self._any_segment = _Alternation([r for r, k in keyed if k is None])
        self._by_segment = {
            key: _Alternation([r for r, k in keyed if k is None or k == key])
            for key in {k for _, k in keyed if k is not None}
        }
        # PERF: a static route is answered from a dict. The entry is computed
        # now against every earlier route, so an earlier regex that also
        # matches the literal still wins, exactly as table order says.
        self._static: dict[str, tuple[Route, tuple[Any, ...]]] = {}
        for index, route in enumerate(self.routes):
            if route.kind == SUBAPP or not is_static(route.pattern):
                continue
            if route.pattern in self._static:
                continue
            winner: tuple[Route, tuple[Any, ...]] = (route, ())
            for earlier in self.routes[:index]:
                m = earlier.regex.fullmatch(route.pattern)
                if m:
                    winner = (earlier, m.groups())
                    break
            self._static[route.pattern] = winner

    def has_static(self, path: str) -> bool:
        """True if ``path`` is one of the table's literal (regex-free) patterns."""
        return path in self._static

    def match(self, path: str) -> tuple[Route, tuple[Any, ...]] | None:
        """Return the winning route and its positional arguments, or None."""
        hit = self._static.get(path)
        if hit is not None:
            return hit
        # PERF: only the routes that can match this first path segment are
        # tried (those whose literal prefix names it, and those that could
        # match anything), still in table order.
        cut = path.find("/", 1)
        alternation = self._by_segment.get(path[1:cut] if cut > 0 else path[1:])
        if alternation is None:
            alternation = self._any_segment
        return alternation.match(path)

    def expand_redirect(self, route: Route, path: str) -> str:
        """Return the URL a ``"redirect /new/\\1"`` target points to for ``path``."""
        m = route.regex.fullmatch(path)
        template = str(route.target)[len("redirect "):].strip()
        return m.expand(template) if m else template
