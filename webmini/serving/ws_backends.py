"""The opening handshake on each server, and taking the connection over from it.

After the 101 response both backends hand back a plain non-blocking socket
on a duplicate of the connection's descriptor, owned by ``webmini.realtime.websocket``
from then on: the server finishes the request and closes its own
descriptor, the TCP connection stays open on ours. Frames are read and
written with wsproto.

Why not uWSGI's ``websocket_recv``/``websocket_recv_nb``/``websocket_send``
for frames: in uWSGI 2.0 they drop the opcode (text and binary look alike),
swallow the peer's close code, limit frame size rather than message size,
keep the continuation buffer in a process-wide global (two gevent
connections receiving fragmented messages at once get their fragments
spliced together), and must be called from the request's own greenlet,
which would then have to stay parked for the life of the connection
(~20 KB each: its stack, its request buffer, its async core). The handshake
does go through ``uwsgi.websocket_handshake``, in the request greenlet, so
that uWSGI knows the response headers are out.
"""

from __future__ import annotations

import _socket
import os
import socket
from typing import Any

from wsproto.utilities import generate_accept_token

from webmini.errors import HTTPError


def accept(env: dict[str, Any], key: str, subprotocol: str | None) -> tuple[Any, bytes]:
    """Answer 101 on the server found in ``env``; return ``(our socket, bytes already read)``."""
    handler = env.get("webmini.pywsgi_handler")
    if handler is not None:
        _send_101(handler.socket, key, subprotocol)
        pending = _buffered(handler)
        return _take_over(handler.socket.fileno()), pending
    sock = env.get("gunicorn.socket")
    if sock is not None and env.get("webmini.gunicorn"):
        # gunicorn's gevent worker (webmini.serving.gunicorn.GeventWorker,
        # which then leaves the connection alone): our 101 on its socket.
        _send_101(sock, key, subprotocol)
        return _take_over(sock.fileno()), _gunicorn_buffered(env)
    if "uwsgi.version" in env:
        import uwsgi

        try:
            uwsgi.websocket_handshake(key, "", subprotocol or "")
        except OSError as exc:
            raise HTTPError(400, [],
                            "WebSocket handshake failed") from exc
        return _take_over(uwsgi.connection_fd()), b""
    raise HTTPError(
        "501 Not Implemented", [],
        "WebSocket needs uWSGI, the webmini dev server or gunicorn with "
        "webmini.serving.gunicorn_conf",
    )


def _send_101(sock: Any, key: str, subprotocol: str | None) -> None:
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Accept: " + generate_accept_token(key.encode("ascii")),
    ]
    if subprotocol:
        lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode("ascii"))
    sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")


def _buffered(handler: Any) -> bytes:
    """What pywsgi's reader already took from the socket past the request headers."""
    sock = handler.socket
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        pending: bytes = handler.rfile.read1(65536) or b""
    except OSError:
        pending = b""
    finally:
        sock.settimeout(timeout)
    return pending


def _gunicorn_buffered(env: dict[str, Any]) -> bytes:
    """What gunicorn's parser already read past the request (frames sent early)."""
    body = env.get("wsgi.input")
    unreader = getattr(getattr(body, "reader", None), "unreader", None)
    buf = getattr(unreader, "buf", None)
    return bytes(buf.getvalue()) if buf is not None else b""


def _take_over(fd: int) -> Any:
    """A non-blocking socket of our own on a duplicate of the server's descriptor ``fd``."""
    # The server closes its descriptor when the request ends (a close, never a
    # shutdown); the connection lives on through the duplicate. _socket's
    # socket is the unpatched C one: webmini.realtime.websocket never blocks on it.
    sock = _socket.socket(fileno=os.dup(fd))
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        # PERF: small frames must not wait for Nagle + delayed ACK (40 ms each).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
