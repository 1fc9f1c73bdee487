"""The URL table: compiled once, matched against whole paths.

A table is web.py's flat sequence ``(pattern, target, pattern, target, ...)``.
Targets are handler classes (or their names), callables, ``"redirect /x"``
strings with backrefs, or sub-applications mounted by literal prefix.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

HANDLER = 0
REDIRECT = 1
SUBAPP = 2

_REGEX_CHARS = frozenset(".^$*+?{}[]\\|()")
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")


def is_static(pattern: str) -> bool:
    """Tell whether ``pattern`` has no regex syntax, so it matches only itself."""
    return not any(ch in _REGEX_CHARS for ch in pattern)


def pairs(mapping: Any) -> list[tuple[str, Any]]:
    """Turn a web.py URL table (flat or of pairs) into a list of (pattern, target)."""
    items = list(mapping)
    if items and all(isinstance(x, (tuple, list)) and len(x) == 2 for x in items):
        return [(str(p), t) for p, t in items]
    if len(items) % 2:
        raise ValueError("webmini: the URL table needs an even number of items (pattern, target)")
    return [(str(items[i]), items[i + 1]) for i in range(0, len(items), 2)]


class Route:
    """One row of the URL table and how to call its target."""

    __slots__ = ("pattern", "target", "kind", "regex", "groups", "first_group")

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
            self.regex = re.compile(pattern)
        self.groups = self.regex.groups
        self.first_group = 0

    def args(self, match: re.Match[str]) -> tuple[Any, ...]:
        """Return this route's groups from a match of the combined table regex."""
        n = self.groups
        if n == 0:
            return ()
        if n == 1:
            return (match.group(self.first_group),)
        return match.group(*range(self.first_group, self.first_group + n))

    def resolve(self, fvars: Mapping[str, Any]) -> Any:
        """Resolve a handler named by a string (``"Index"`` or ``"pkg.mod.Class"``) once."""
        target = self.target
        if not isinstance(target, str) or self.kind != HANDLER:
            return target
        if target in fvars:
            resolved = fvars[target]
        elif "." in target:
            module_name, _, attr = target.rpartition(".")
            resolved = getattr(importlib.import_module(module_name), attr)
        else:
            raise LookupError(f"webmini: URL table names {target!r}, which is not defined")
        self.target = resolved
        return resolved


class Router:
    """Match a path against the URL table: first match in table order wins."""

    def __init__(self, table: Iterable[tuple[str, Any]], is_subapp: Any) -> None:
        self.routes = [Route(p, t, is_subapp(t)) for p, t in table]
        dynamic = [
            r for r in self.routes if r.kind == SUBAPP or not is_static(r.pattern)
        ]
        self._combined, self._by_group = self._combine(dynamic)
        self._dynamic = dynamic
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

    @staticmethod
    def _combine(routes: list[Route]) -> tuple[re.Pattern[str] | None, dict[int, Route]]:
        # PERF: one alternation of all regex routes is matched in C; the outer
        # group that closes last (lastindex) names the route that matched.
        if not routes or any(_BACKREF.search(r.regex.pattern) for r in routes):
            return None, {}
        parts = []
        by_group: dict[int, Route] = {}
        group = 1
        for r in routes:
            by_group[group] = r
            r.first_group = group + 1
            parts.append("(" + r.regex.pattern + ")")
            group += 1 + r.groups
        try:
            combined = re.compile("|".join(parts))
        except re.error:  # inline flags or duplicate group names: match one by one
            for r in routes:
                r.first_group = 1
            return None, {}
        return combined, by_group

    def match(self, path: str) -> tuple[Route, tuple[Any, ...]] | None:
        """Return the winning route and its positional arguments, or None."""
        hit = self._static.get(path)
        if hit is not None:
            return hit
        combined = self._combined
        if combined is not None:
            m = combined.fullmatch(path)
            if m is None:
                return None
            route = self._by_group[m.lastindex or 0]
            return route, route.args(m)
        for route in self._dynamic:
            m = route.regex.fullmatch(path)
            if m is not None:
                return route, m.groups()
        return None

    def expand_redirect(self, route: Route, path: str) -> str:
        """Return the URL a ``"redirect /new/\\1"`` target points to for ``path``."""
        m = route.regex.fullmatch(path)
        template = str(route.target)[len("redirect "):].strip()
        return m.expand(template) if m else template
