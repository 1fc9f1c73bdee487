"""Where a redirect may go: ``is_safe_url`` for "next" URLs, and the ``Location`` of redirects.

``Location`` values are built here for every ``web.redirect``/``seeother``/
``found``... and ``"redirect /x"`` route:

* a relative target stays on this host: leading slashes and backslashes
  collapse to one (``//evil.com``, ``///evil.com``, ``/\\evil.com`` and the
  ``"/(.*)/" -> "redirect /\\1"`` idiom fed ``//evil.com/`` all become
  ``/evil.com``), as web.py does;
* an absolute target must be ``http`` or ``https`` (``javascript:``,
  ``data:``... are a 400);
* the result is percent-encoded (an IRI becomes a URI, the host IDNA-encoded),
  so it is always ASCII;
* relative targets are sent relative (``Location: /x``, as Werkzeug since
  2.1 and RFC 9110 allow): a forged ``Host`` header cannot move them. Set
  ``web.config.absolute_redirects = True`` for web.py's absolute form; the
  host is then used only if it is in ``web.config.allowed_hosts``.

Near a leaf of the core: it imports only ``webmini.hosts`` (``webmini.errors`` checks
targets with :func:`clean_target` when a redirect is built; the application
resolves them with :func:`resolve_location` when it is sent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from webmini.hosts import host_allowed

__all__ = ["clean_target", "is_safe_url", "resolve_location"]

_SCHEMES = ("http", "https")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LEADING_SLASHES = re.compile(r"^[/\\]+")
# Characters left as they are when percent-encoding a URL: reserved ones
# (they carry its structure) and "%" (already encoded text stays as it is).
_URL_SAFE = "/?#[]@!$&'()*+,;=:%~-._"


def is_safe_url(
    url: str | None,
    allowed_hosts: Iterable[str] | str | None = None,
    require_https: bool = False,
) -> bool:
    """True if ``url`` stays on this site or goes to one of ``allowed_hosts`` over http(s).

    For a user-supplied "next" URL (Django's ``url_has_allowed_host_and_scheme``)::

        target = web.input(next="/").next
        raise web.seeother(target if web.is_safe_url(target, {web.ctx.host}) else "/")

    Refused: other hosts, ``//evil.com``, ``/\\evil.com``, ``javascript:``,
    ``http:evil.com``, user-info tricks (``https://ok.com@evil.com``), control
    characters. ``allowed_hosts`` entries are host names, or ``host:port``.
    """
    if not url or not isinstance(url, str):
        return False
    url = url.strip()
    # SECURITY: browsers drop tabs and newlines inside URLs and read "\" as
    # "/": "/\t/evil.com" and "/\\evil.com" both mean //evil.com to them.
    if _CONTROL.search(url):
        return False
    normalized = url.replace("\\", "/")
    try:
        parts = urlsplit(normalized)
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if not scheme and not parts.netloc:
        # A path (or query, or fragment) on this host, unless a browser would
        # read it as scheme-relative.
        return not normalized.startswith("//")
    if scheme and scheme not in _SCHEMES:
        return False
    if require_https and scheme != "https":
        return False
    if not parts.netloc or parts.username is not None or parts.password is not None:
        return False  # "http:evil.com", "https://ok.com@evil.com"
    host = (parts.hostname or "").lower().rstrip(".")
    if isinstance(allowed_hosts, str):
        allowed_hosts = [allowed_hosts]
    allowed = {h.lower().rstrip(".") for h in (allowed_hosts or ())}
    return bool(host) and (host in allowed or (port is not None and f"{host}:{port}" in allowed))


def _encode(url: str) -> str:
    """Percent-encode what a URI may not hold (non-ASCII, spaces, quotes, controls)."""
    if url.isascii() and not any(ch in url for ch in ' "<>\\^`{|}'):
        return url
    return quote(url, safe=_URL_SAFE)


def clean_target(url: str) -> str:
    """``url`` made safe to redirect to: http(s) if absolute, one leading slash, percent-encoded.

    Raises ``ValueError`` for a control character or a scheme other than
    http/https; the result is ASCII and names another host only if ``url``
    was an absolute http(s) URL.
    """
    if not isinstance(url, str) or _CONTROL.search(url):
        raise ValueError("control characters in a redirect target")
    if ":" in url.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]:
        parts = urlsplit(url)
        if parts.scheme.lower() not in _SCHEMES or not parts.netloc:
            # SECURITY: javascript:, data:, vbscript: run in the user's
            # session; "http:evil.com" is read as http://evil.com.
            raise ValueError(f"refusing to redirect to a {parts.scheme!r} URL")
        netloc = parts.netloc
        if not netloc.isascii():
            host = parts.hostname or ""
            netloc = netloc.replace(host, host.encode("idna").decode("ascii"))
        return urlunsplit((parts.scheme, netloc, _encode(parts.path), _encode(parts.query),
                           _encode(parts.fragment)))
    # SECURITY: "//evil.com", "///evil.com", "/\\evil.com": browsers read
    # these as another host; on this one they mean the path /evil.com.
    return _encode(_LEADING_SLASHES.sub("/", url))


def resolve_location(
    target: str,
    absolute: bool = False,
    c: Any = None,
    absolute_redirects: bool = False,
    allowed_hosts: Iterable[str] | str = (),
) -> str:
    """The ``Location`` for a :func:`clean_target` ``target`` in request ``c``.

    ``/x`` is taken under the application's home path (``absolute``: the
    domain root), ``x`` relative to the request's path. The result is
    relative unless ``target`` was absolute or ``absolute_redirects`` is on
    and the request's ``Host`` is in ``allowed_hosts``.
    """
    if c is None or "://" in target:
        return target
    if target.startswith("/"):
        path = ("" if absolute else c.homepath) + target
    elif target:
        base = c.homepath + c.path
        path = base.rsplit("/", 1)[0] + "/" + target if "/" in base else target
        path = _LEADING_SLASHES.sub("/", path)
    else:
        path = c.homepath + c.path
    if absolute_redirects and allowed_hosts:
        host = (c.env.get("HTTP_HOST") or "").lower()
        # SECURITY: the Host header is the client's: an absolute Location is
        # built from it only when it is one of ours.
        if host and host_allowed(host, allowed_hosts):
            return f"{c.protocol}://{host}{path}"
    return path
