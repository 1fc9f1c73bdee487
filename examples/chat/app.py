"""A chat room over WebSockets: one page, one socket each, messages reach every worker.

Run it under uWSGI with two workers (see README.md next to this file) or with
the dev server: ``python examples/chat/app.py 8080``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import webmini as web
from webmini.realtime import websocket
from webmini.realtime.fanout import UnixFanout
from webmini.rundir import default_runtime_dir

PAGE = Path(__file__).with_name("index.html")

urls = (
    "/", "Index",
    "/chat", "Chat",
)


class Index:
    """The chat page."""

    def GET(self) -> bytes:
        web.header("Content-Type", "text/html; charset=utf-8")
        return PAGE.read_bytes()


class Chat(web.WebSocket):
    """One chat member: everything it says goes to the whole room, on every worker."""

    max_message_size = 4096

    def on_open(self) -> None:
        self.name = web.input(name="anonymous").name.strip()[:32] or "anonymous"
        self.join("chat")
        # The worker's pid is shown on the page to make the demo's point:
        # members on different workers still hear each other.
        self.send(json.dumps({"system": "welcome", "worker": os.getpid()}))
        self.broadcast("chat", json.dumps({"system": f"{self.name} joined"}), exclude=self)

    def on_message(self, data: str | bytes) -> None:
        if not isinstance(data, str):
            self.close(1003, "text messages only")
            return
        self.broadcast("chat", json.dumps({"from": self.name, "text": data[:1000]}))

    def on_close(self, code: int, reason: str) -> None:
        self.broadcast("chat", json.dumps({"system": f"{self.name} left"}))


app = web.application(urls, globals())
application = app.wsgifunc()

# Workers of this node relay broadcasts through unix sockets in a private directory.
# Default: $XDG_RUNTIME_DIR/webmini-chat (/run/webmini-chat as root), never a
# predictable name in a shared /tmp.
websocket.set_fanout(UnixFanout(
    os.environ.get("CHAT_FANOUT_DIR") or default_runtime_dir("webmini-chat")
))

if __name__ == "__main__":
    app.run()
