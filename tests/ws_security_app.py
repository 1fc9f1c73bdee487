"""A WebSocket app for the security tests, served by uWSGI from uwsgi.ini."""

from __future__ import annotations

import json
import os
import resource

import webmini as web
from webmini.realtime import websocket as ws_mod
from webmini.realtime.fanout import UnixFanout

urls = ("/flood", "Flood", "/flood-stats", "FloodStats", "/room", "Room", "/", "Index")

RESULTS: dict[str, object] = {}


class Index:
    def GET(self) -> str:
        return "ok"


class Flood(web.WebSocket):
    """Broadcasts N fresh 1 MiB messages to its own group, whose member never reads."""

    ping_interval = None

    def on_open(self) -> None:
        self.join("flood")

    def on_message(self, data: str | bytes) -> None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = delivered = 0
        for i in range(int(data)):
            if ws_mod.broadcast("flood", bytes([i % 256]) * (1 << 20)):
                delivered += 1
            peak = max(peak, self._queued)
        RESULTS.update(
            delivered=delivered, peak_queued=peak, open=self._is_open(),
            close_code=self.close_code,
            maxrss_growth_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)


class FloodStats:
    def GET(self) -> dict[str, object]:
        return RESULTS


class Room(web.WebSocket):
    """Says which worker serves it; relays messages to every member on every worker."""

    max_message_size = 1 << 20

    def on_open(self) -> None:
        self.join("room")
        self.send(json.dumps({"pid": os.getpid()}))

    def on_message(self, data: str | bytes) -> None:
        self.broadcast("room", data)


if os.environ.get("WS_FANOUT_DIR"):
    ws_mod.set_fanout(UnixFanout(os.environ["WS_FANOUT_DIR"]))

app = web.application(urls, globals())
application = app.wsgifunc()
