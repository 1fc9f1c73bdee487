"""Realtime wing: work that outlives or escapes a single request/response.

- ``websocket``: WebSocket handler classes (wsproto framing).
- ``ws_handshake``: the opening handshake's checks: request, Origin, subprotocol.
- ``ws_groups``: this process's connections (one registry object): groups,
  broadcast, the deadline ticker, close at exit.
- ``fanout``: broadcast between worker processes over a private directory.
- ``offload``: CPU-heavy calls moved off the event loop (process/thread pools).
- ``workqueue``: a bounded background work queue.

The server side of the handshake is ``webmini.serving.ws_backends``. The
modules a user imports (``websocket``, ``ws_groups``, ``offload``,
``workqueue``) check for gevent (and wsproto) through
``webmini._extras.require``; ``fanout`` and ``ws_handshake`` are reached only
through them, after that check.
"""
