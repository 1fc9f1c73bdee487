"""X-Forwarded-Proto/-Host/-For, believed only from ``config.trusted_proxies``.

Any client can send ``X-Forwarded-Proto: https``; were it believed, ``ctx.home``,
redirects and ``Secure`` cookie decisions would follow a stranger's word. The
headers count only when the peer (``REMOTE_ADDR``) is a trusted proxy: an
address or network listed in ``config.trusted_proxies`` (none by default).

Forwarded headers are applied once: when a proxy middleware in front of the
app already rewrote the environ from them (werkzeug's ``ProxyFix`` leaves
``werkzeug.proxy_fix.orig``; any other can set ``webmini.proxy_applied``),
its ``REMOTE_ADDR``, ``wsgi.url_scheme`` and ``HTTP_HOST`` are the answer
and the headers it left behind are not read a second time.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from webmini.config import config

__all__ = [
    "HOST_SYNTAX", "already_applied", "client_ip", "forwarded_host", "forwarded_proto",
    "is_trusted",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A Host value webmini accepts (RFC 9110 §7.2 uri-host [":" port], narrowed to
#: what DNS names and IP literals use): a name of letters, digits, "_", "-"
#: and ".", or an IPv6 literal in brackets, then an optional port.
HOST_SYNTAX = re.compile(r"(?:([A-Za-z0-9_][A-Za-z0-9_.\-]{0,252})|\[([0-9A-Fa-f:.]{2,45})\])"
                         r"(?::([0-9]{1,5}))?")

_cache: tuple[Any, tuple[Network, ...]] = ((), ())


def _networks() -> tuple[Network, ...]:
    """``config.trusted_proxies`` parsed (a list or a comma-separated string), cached."""
    global _cache
    setting = config.get("trusted_proxies") or ()
    if _cache[0] == setting:
        return _cache[1]
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    nets = tuple(ipaddress.ip_network(str(item).strip(), strict=False)
                 for item in items if str(item).strip())
    _cache = (setting, nets)
    return nets


def _trusted_address(address: str) -> bool:
    nets = _networks()
    if not nets:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in nets)


#: Environ keys saying a proxy middleware already applied the forwarded headers.
APPLIED_KEYS = ("werkzeug.proxy_fix.orig", "webmini.proxy_applied")


def already_applied(env: dict[str, Any]) -> bool:
    """True when a proxy middleware (e.g. werkzeug's ProxyFix) rewrote the environ already."""
    return APPLIED_KEYS[0] in env or APPLIED_KEYS[1] in env


def is_trusted(env: dict[str, Any]) -> bool:
    """True when the peer that sent this request is a trusted proxy."""
    # SECURITY: forwarded headers from anyone else are ignored, and so are
    # those a proxy middleware already applied: after ProxyFix, REMOTE_ADDR
    # is its answer, and the headers are not walked a second time.
    return not already_applied(env) and _trusted_address(str(env.get("REMOTE_ADDR", "")))


def _last(value: str) -> str:
    # The proxy next to us appended its value last.
    return value.rsplit(",", 1)[-1].strip()


def forwarded_proto(env: dict[str, Any]) -> str | None:
    """The scheme a trusted proxy says the client used (``http``/``https``), else None."""
    value = env.get("HTTP_X_FORWARDED_PROTO")
    if not value or not is_trusted(env):
        return None
    proto = _last(str(value)).lower()
    return proto if proto in ("http", "https") else None


def forwarded_host(env: dict[str, Any]) -> str | None:
    """The Host a trusted proxy says the client asked for (validated), else None."""
    value = env.get("HTTP_X_FORWARDED_HOST")
    if not value or not is_trusted(env):
        return None
    host = _last(str(value))
    return host if HOST_SYNTAX.fullmatch(host) else None


def client_ip(env: dict[str, Any]) -> str:
    """The client's address: ``REMOTE_ADDR``, or from X-Forwarded-For through trusted proxies.

    The chain is read from the right: each trusted proxy vouches for the
    address left of it; the first address that is not a trusted proxy is the
    client (a client can prepend anything, never append past its proxy).
    """
    peer = str(env.get("REMOTE_ADDR", ""))
    chain = env.get("HTTP_X_FORWARDED_FOR")
    if not chain or not is_trusted(env):
        return peer
    hops = [hop.strip() for hop in str(chain).split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop.strip("[]"))
        except ValueError:
            return peer  # garbage in the chain: believe only the socket
        if not _trusted_address(hop):
            return hop
    return hops[0]  # every hop is a trusted proxy: the first one spoke for itself
