"""The ``Host`` a request names: checked before any handler runs (Django's ALLOWED_HOSTS).

``web.ctx.host`` and ``web.ctx.home`` are built from the ``Host`` header (or
from ``X-Forwarded-Host`` sent by a trusted proxy); a password-reset link made
of ``web.ctx.home + "/reset?token=..."`` goes wherever a forged ``Host``
says. So every request's host is checked once, before the handler:

* always its syntax: a name of letters, digits, ``-``, ``.`` and ``_``, or
  an IPv6 literal in brackets, and an optional port 0-65535; no user-info
  (``app.example:80@evil.example``), no spaces or control characters. Else 400;
* with ``web.config.allowed_hosts`` set (or ``WEBMINI_ALLOWED_HOSTS``), its
  name too. Entries as in Django: ``"app.example"`` (exactly that name, any
  port), ``".app.example"`` (that name and every subdomain), ``"*"`` (any
  name), plus ``"*.app.example"`` (subdomains only) and ``"app.example:8443"``
  (that port only). A host outside them is a 400, as Django's DisallowedHost.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from webmini.config import config
from webmini.forwarded import HOST_SYNTAX, forwarded_host

__all__ = ["PASSED", "check_host", "host_allowed", "split_host"]

_CACHE_SIZE = 1024

# (setting as given, (exact names, suffixes ".x.y", subdomain-only suffixes, any, with port))
_Patterns = tuple[frozenset[str], tuple[str, ...], tuple[str, ...], bool, frozenset[str]]
_compiled: tuple[Any, _Patterns | None] = ((), None)
# PERF: the verdict on each Host value seen (a dict lookup per request after the
# first); cleared when the setting changes or when it holds _CACHE_SIZE values.
_verdicts: dict[str, bool] = {}
#: PERF: Host value (None: no header) -> the ``allowed_hosts`` object it passed
#: under, for :func:`webmini.request.screen`'s fast path: a request whose Host
#: is here with today's setting object (and no X-Forwarded-Host) needs no call.
#: Only immutable settings (str, tuple, frozenset) are recorded; a list may
#: change in place, so it is compared by value on every request instead.
PASSED: dict[str | None, Any] = {}


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a ``Host`` value (name lower-case, no trailing dot); None if invalid."""
    m = HOST_SYNTAX.fullmatch(value)
    if m is None:
        return None
    name, literal, port = m.groups()
    if literal is not None:
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return None
        name = "[" + literal.lower() + "]"
    else:
        name = name.lower()
        if name.endswith("."):
            name = name[:-1]
        if not name or ".." in name:
            return None
    number = int(port) if port is not None else None
    if number is not None and number > 65535:
        return None
    return name, number


def _compile(setting: Any) -> _Patterns | None:
    """The patterns of ``allowed_hosts`` (a list, or a comma-separated string); None if unset."""
    items = setting.split(",") if isinstance(setting, str) else list(setting or ())
    entries = [str(item).strip().lower() for item in items if str(item).strip()]
    if not entries:
        return None
    exact: set[str] = set()
    suffixes: list[str] = []
    subdomains: list[str] = []
    with_port: set[str] = set()
    any_host = False
    for entry in entries:
        if entry == "*":
            any_host = True
        elif entry.startswith("*."):
            subdomains.append(entry[1:].rstrip("."))
        elif entry.startswith("."):
            suffixes.append(entry.rstrip("."))
        else:
            parsed = split_host(entry)
            if parsed is None:
                raise ValueError(f"webmini: allowed_hosts: {entry!r} is not a host name")
            name, port = parsed
            if port is None:
                exact.add(name)
            else:
                with_port.add(f"{name}:{port}")
    return frozenset(exact), tuple(suffixes), tuple(subdomains), any_host, frozenset(with_port)


def _matches(name: str, port: int | None, patterns: _Patterns) -> bool:
    exact, suffixes, subdomains, any_host, with_port = patterns
    if any_host or name in exact:
        return True
    if port is not None and f"{name}:{port}" in with_port:
        return True
    for suffix in suffixes:  # ".app.example": app.example and its subdomains
        if name.endswith(suffix) or name == suffix[1:]:
            return True
    return any(name.endswith(suffix) for suffix in subdomains)


def host_allowed(host: str, allowed_hosts: Iterable[str] | str) -> bool:
    """True if ``host`` (a ``Host`` value, port included) is valid and in ``allowed_hosts``."""
    parsed = split_host(host)
    patterns = _compile(allowed_hosts)
    return parsed is not None and patterns is not None and _matches(parsed[0], parsed[1], patterns)


def _judge(host: str, patterns: _Patterns | None) -> bool:
    if len(host) > 260:
        return False
    parsed = split_host(host)
    if parsed is None:
        return False
    return patterns is None or _matches(parsed[0], parsed[1], patterns)


def check_host(environ: dict[str, Any]) -> str | None:
    """Why this request's Host (or trusted X-Forwarded-Host) is refused, or None if it is fine."""
    global _compiled
    setting = config["allowed_hosts"]
    # A list or set is compared by value: changed in place, it is read again.
    key = setting if isinstance(setting, (str, tuple, frozenset)) else tuple(setting or ())
    if key is not _compiled[0] and key != _compiled[0]:
        _compiled = (key, _compile(key))
        _verdicts.clear()
        PASSED.clear()
    host = environ.get("HTTP_HOST")
    # SECURITY: the Host header builds ctx.host/ctx.home (reset links, absolute
    # redirects): a malformed one, or one outside allowed_hosts, never reaches
    # the application. PERF: one dict lookup per request once a Host was seen.
    if host is not None:
        verdict = _verdicts.get(host)
        if verdict is None:
            verdict = _judge(host, _compiled[1])
            if len(_verdicts) >= _CACHE_SIZE:
                _verdicts.clear()
            _verdicts[host] = verdict
        if not verdict:
            return "Invalid Host header" if _compiled[1] is None or split_host(host) is None \
                else "Host not allowed"
    if "HTTP_X_FORWARDED_HOST" in environ and _compiled[1] is not None:
        # SECURITY: a trusted proxy's X-Forwarded-Host becomes ctx.host: it must be
        # allowed too (a malformed one, or one from anyone else, is ignored).
        forwarded = forwarded_host(environ)
        if forwarded is not None and not _judge(forwarded, _compiled[1]):
            return "X-Forwarded-Host not allowed"
    if key is setting:  # immutable: the fast path may skip this call next time
        if len(PASSED) >= _CACHE_SIZE:
            PASSED.clear()
        PASSED[host] = setting
    return None
