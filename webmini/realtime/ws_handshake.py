"""The WebSocket opening handshake: request checks, Origin policy, subprotocol, kept environ."""

from __future__ import annotations

import binascii
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from webmini.errors import HTTPError

#: What ``ctx.env`` keeps for the life of a connection once ``on_open`` has
#: returned: what ``ctx`` derives the URL, host and client address from, and
#: the headers a handler may still want (cookies, credentials, proxy headers).
ENVIRON_KEEP = frozenset({
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
    "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "HTTPS", "wsgi.url_scheme",
    "HTTP_HOST", "HTTP_ORIGIN", "HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_USER_AGENT",
    "HTTP_ACCEPT_LANGUAGE", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_REAL_IP",
})


def _kept_environ(env: dict[str, Any], keep: frozenset[str]) -> dict[str, Any]:
    """The part of ``env`` an open connection keeps (a new, small dict)."""
    # PERF: the server's environ (~2.8 KB under uWSGI: the request body
    # stream, the handshake headers, server internals) would otherwise live
    # as long as the connection, 10,000 times over.
    return {k: v for k, v in env.items() if k in keep}


def _check_handshake(env: dict[str, Any]) -> str:
    upgrade = env.get("HTTP_UPGRADE", "").lower()
    connection = env.get("HTTP_CONNECTION", "").lower()
    if upgrade != "websocket" or "upgrade" not in [t.strip() for t in connection.split(",")]:
        raise HTTPError(
            "426 Upgrade Required",
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
            "this URL speaks WebSocket only",
        )
    if env.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
        raise HTTPError(
            "426 Upgrade Required",
            [("Sec-WebSocket-Version", "13")],
            "unsupported WebSocket version",
        )
    if env.get("CONTENT_LENGTH") not in (None, "", "0") or env.get("HTTP_TRANSFER_ENCODING"):
        raise HTTPError(400, [],
                        "a WebSocket handshake has no body")
    key = env.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        valid = len(binascii.a2b_base64(key.encode("ascii"))) == 16
    except (binascii.Error, UnicodeEncodeError):
        valid = False
    if not valid:
        raise HTTPError(400, [],
                        "bad Sec-WebSocket-Key")
    return key


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _origin_tuple(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin with the default port filled in; None if malformed."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a bad port
        return None
    if scheme in ("ws", "wss"):
        scheme = "https" if scheme == "wss" else "http"
    if scheme not in ("http", "https") or not host or port is None:
        return None
    return scheme, host, port


def own_origin(env: dict[str, Any]) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` this request was sent to, from the WSGI environ."""
    scheme = str(env.get("wsgi.url_scheme") or "http").lower()
    host = env.get("HTTP_HOST") or env.get("SERVER_NAME") or ""
    if not host:
        return None
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
        hostname = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return None
    if port is None:
        # nginx's $host drops the port: take the port the server says it
        # listens on (uwsgi_params' SERVER_PORT), else the scheme's default.
        server_port = str(env.get("SERVER_PORT") or "")
        port = int(server_port) if server_port.isdigit() else _DEFAULT_PORTS[
            "https" if scheme == "https" else "http"]
    if not hostname:
        return None
    return ("https" if scheme == "https" else "http"), hostname, port


def _check_origin(env: dict[str, Any], allowed: Iterable[str]) -> None:
    origin = env.get("HTTP_ORIGIN")
    # SECURITY: a browser sends the page's Origin on every WebSocket; a page
    # from another site must not ride the user's cookies into this socket
    # (cross-site WebSocket hijacking). Clients that send no Origin are not
    # browsers, and are no such risk.
    if origin is None:
        return
    allowed = tuple(allowed)
    if "*" in allowed:
        return
    theirs = _origin_tuple(origin)
    # SECURITY: an origin is scheme + host + port, compared with default
    # ports filled in: http://site:8080 or http://site is not https://site.
    if theirs is not None:
        if theirs == own_origin(env):
            return
        if any(theirs == _origin_tuple(a) for a in allowed):
            return
    raise HTTPError(403, [],
                    "cross-origin WebSocket refused")


def _choose_subprotocol(env: dict[str, Any], ours: Iterable[str]) -> str | None:
    offered = env.get("HTTP_SEC_WEBSOCKET_PROTOCOL")
    if not offered:
        return None
    theirs = {p.strip() for p in offered.split(",")}
    for proto in ours:
        if proto in theirs:
            return proto
    return None
