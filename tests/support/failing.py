"""Handlers that fail in each place an error reporter hears of: the handler (``Div`` by
zero), the streamed body (``Stream``), a WebSocket event (``Boom``, with
:func:`serve_ws_and_fail`). Shared by the error-reporting tests of
``test_ecosystem.py`` (webmini's hooks) and ``test_ecosystem_apm.py`` (the real SDKs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import websocket  # websocket-client

import webmini as web


class Div:
    """``/div/N``: 1 // N, so ``/div/0`` raises ZeroDivisionError in the handler."""

    def GET(self, n: str) -> str:
        return str(1 // int(n))


class Stream:
    """A streamed body that raises KeyError after its first chunk."""

    def GET(self) -> Iterator[str]:
        yield "first "
        raise KeyError("lost mid-body")


class Boom(web.WebSocket):
    """A WebSocket whose every message raises ValueError."""

    def on_message(self, data: str | bytes) -> None:
        raise ValueError(f"bad message {data!r}")


def serve_ws_and_fail(wsgi: Any) -> None:
    """Serve ``wsgi`` with the dev server; send ``Boom`` at ``/ws`` a message: it closes 1011."""
    from webmini.serving.devserver import make_server

    server = make_server(wsgi, ("127.0.0.1", 0))
    server.start()
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{server.server_port}/ws", timeout=5)
        ws.send("hi")
        opcode, frame = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame[:2], "big") == 1011
        ws.close()
    finally:
        server.stop(timeout=2)
