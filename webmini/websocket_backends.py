"""The opening handshake on each server: uWSGI's native API, or the dev server's socket.

After the 101 response both backends hand back a gevent socket on the
client connection; frames are then read and written by ``webmini.websocket``
with wsproto, in the request's own greenlet.

Why not uWSGI's ``websocket_recv``/``websocket_recv_nb`` for frames too:
in uWSGI 2.0 they drop the opcode (text and binary look alike), swallow
the peer's close code, limit frame size rather than message size, and keep
the continuation buffer in a process-wide global, so two gevent connections
receiving fragmented messages at once get their fragments spliced together.
The handshake, though, goes through ``uwsgi.websocket_handshake`` so that
uWSGI knows the response headers are out.
"""

from __future__ import annotations

import socket
from typing import Any

from gevent import socket as gsocket
from wsproto.utilities import generate_accept_token

from .errors import HTTPError


def accept(
    env: dict[str, Any], key: str, subprotocol: str | None
) -> tuple[Any, bool, bytes]:
    """Answer 101 on the server found in ``env``.

    Returns ``(socket, detach_when_done, bytes_already_read)``.
    """
    handler = env.get("webmini.pywsgi_handler")
    if handler is not None:
        sock = _accept_pywsgi(handler, key, subprotocol)
        return sock, False, _release_reader(handler, env)
    if "uwsgi.version" in env:
        return _accept_uwsgi(key, subprotocol), True, b""
    raise HTTPError(
        "501 Not Implemented", [("Content-Type", "text/plain; charset=utf-8")],
        "WebSocket needs uWSGI or the webmini dev server",
    )


def _accept_pywsgi(handler: Any, key: str, subprotocol: str | None) -> Any:
    sock = handler.socket
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + generate_accept_token(key.encode("ascii")),
    ]
    if subprotocol:
        lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode("ascii"))
    _nodelay(sock)
    sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
    return sock


def _release_reader(handler: Any, env: dict[str, Any]) -> bytes:
    """Take what pywsgi's reader buffered past the headers, then free its buffer."""
    rfile = handler.rfile
    if env.get("CONTENT_LENGTH") not in (None, "", "0") or env.get("HTTP_TRANSFER_ENCODING"):
        return b""  # pywsgi still reads the (odd) request body through it
    # PERF: the reader's 8 KiB buffer would otherwise live as long as the
    # connection; closing it frees the buffer (the socket stays open).
    sock = handler.socket
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        pending: bytes = rfile.read1(65536) or b""
    except OSError:
        pending = b""
    finally:
        sock.settimeout(timeout)
    rfile.close()
    return pending


def _accept_uwsgi(key: str, subprotocol: str | None) -> Any:
    import uwsgi

    try:
        uwsgi.websocket_handshake(key, "", subprotocol or "")
    except OSError as exc:
        raise HTTPError(400, [("Content-Type", "text/plain; charset=utf-8")],
                        "WebSocket handshake failed") from exc
    # A socket object over uWSGI's own descriptor (no dup: a descriptor per
    # connection counts at 10,000 connections); detached, never closed, at
    # the end: uWSGI closes the descriptor when the request ends.
    sock = gsocket.socket(fileno=uwsgi.connection_fd())
    _nodelay(sock)
    return sock


def _nodelay(sock: Any) -> None:
    # PERF: small frames must not wait for Nagle + delayed ACK (40 ms each).
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
