"""Realtime wing: work that outlives or escapes a single request/response.

- ``websocket``: WebSocket handler classes (wsproto framing).
- ``ws_backends``: the handshake under uWSGI and the dev server.
- ``fanout``: broadcast between worker processes over a private directory.
- ``offload``: CPU-heavy calls moved off the event loop (process/thread pools).
- ``workqueue``: a bounded background work queue.

Each module imports gevent (and wsproto) through ``webmini._extras.require``.
"""
