"""Refuse to serve when uWSGI's lenient HTTP parsers are reachable beyond this host.

uWSGI 2.0's HTTP parser echoes any version (``HTTP/9.9 200``), splits a
request line on a bare CR and ignores chunked request bodies: it is fit for
health checks and benchmarks from the host itself, never for untrusted
clients. Its HTTP router (``http``, uwsgi.ini's WEBMINI_HTTP_ROUTER) parses
the same way. Clients go through nginx (examples/nginx.conf). The check runs
when the app is loaded under uWSGI
(:func:`webmini.serving.uwsgi_setup.startup_check_in_workers`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

__all__ = ["HTTP_SOCKET_OPTIONS", "check_http_sockets", "is_local_address"]

#: uWSGI options that put its own HTTP parser on a socket (the workers' or the router's).
HTTP_SOCKET_OPTIONS = ("http-socket", "http11-socket", "http", "https")


def is_local_address(address: str) -> bool:
    """True for a unix socket (path or ``@abstract``) or a loopback ``host:port``."""
    address = address.strip().split(",", 1)[0]  # drop uWSGI's ",modifier" suffix
    if ":" not in address:
        return True  # a unix socket path: only this host reaches it
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # empty (every interface), a host name, or garbage: refuse


def _values(value: Any) -> Iterable[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        yield item.decode() if isinstance(item, bytes) else str(item)


def check_http_sockets(options: dict[str, Any]) -> None:
    """Raise RuntimeError when an HTTP socket in uWSGI's ``options`` is not local."""
    # SECURITY: no untrusted client may reach uWSGI's lenient HTTP parser.
    for name in HTTP_SOCKET_OPTIONS:
        for address in _values(options.get(name, [])):
            if not is_local_address(address):
                raise RuntimeError(
                    f"uWSGI {name} {address!r} is reachable beyond this host; its HTTP parser "
                    "is not fit for untrusted clients: bind it to 127.0.0.1 (or a unix socket) "
                    "and put nginx in front (examples/nginx.conf)")
