"""A webmini app for a multi-node deployment: sessions and counters on the memcached
ring, a MySQL pool, readiness and metrics. Every answer names the node and worker
that served it, so a client can see requests move between nodes.

Configured from the environment (set per node by the uWSGI ini files):

- ``WEBMINI_NODE``: this node's name (``node1``...)
- ``WEBMINI_DB_URL``: ``mysql://user:password@host:port/db?pool_size=8``
- ``WEBMINI_MEMCACHED``: ``host:port,host:port,...`` (the same list, in any order,
  on every node: the ketama ring places keys by name, not by position)
- ``WEBMINI_SECRET``: the session-signing secret (the same on every node)
- ``WEBMINI_METRICS_DIR``: a per-node directory where workers spool metrics
"""

from __future__ import annotations

import os
from typing import Any

import webmini as web
from webmini.ops import health
from webmini.ops.metrics import Metrics, worker_id
from webmini.stores.cache import Cache
from webmini.stores.mysql import Database
from webmini.stores.sessions import CacheStore, Session

NODE = os.environ.get("WEBMINI_NODE", "node")
SECRET = os.environ.get("WEBMINI_SECRET", "")

db = Database.from_url(os.environ["WEBMINI_DB_URL"]) if os.environ.get("WEBMINI_DB_URL") else None
_servers = [s for s in os.environ.get("WEBMINI_MEMCACHED", "").split(",") if s]
# A node that dies is skipped for retry_delay seconds; its keys fall to the next node.
cache = Cache(_servers, pool_size=16, socket_timeout=0.5, retry_delay=2.0) if _servers else None

urls = (
    "/node", "NodeInfo",
    "/work", "Work",
    "/session", "SessionView",
    "/session/login", "Login",
    "/session/incr", "SessionIncr",
    "/counter/([a-z0-9_-]+)", "Counter",
    "/counter/([a-z0-9_-]+)/incr", "CounterIncr",
    "/value/([a-z0-9_-]+)", "Value",
    "/healthz", health.readiness(db=db, cache=cache, node=NODE, timeout=2.0,
                                details=True),
    "/livez", health.liveness(),
    "/metrics", "MetricsView",
)

app = web.application(urls, globals())
metrics = Metrics(db=db, cache=cache, spool_dir=os.environ.get("WEBMINI_METRICS_DIR") or None,
                  labels={"node": NODE})
# Metrics first: it times everything below it, the session processor included.
app.add_processor(metrics.processor)
MetricsView = metrics.handler
session = Session(app, CacheStore(cache), initializer={"user": None, "count": 0},
                  secret=SECRET) if cache is not None else None


def here(**extra: Any) -> dict[str, Any]:
    """The node/worker/pid that serves this request, plus ``extra``."""
    return {"node": NODE, "worker": worker_id(), "pid": os.getpid(), **extra}


def _require(thing: Any, name: str) -> Any:
    if thing is None:
        raise web.ServiceUnavailable(f"{name} is not configured on {NODE}")
    return thing


class NodeInfo:
    """``GET /node``: who answered."""

    def GET(self) -> dict[str, Any]:  # noqa: N802
        """Name the node."""
        return here()


class Work:
    """``GET /work``: a typical read: one cache lookup, one indexed query on a miss."""

    def GET(self) -> dict[str, Any]:  # noqa: N802
        """Read a value through the cache."""
        value = _require(cache, "memcached").get("work:answer")
        if value is None:
            row = _require(db, "MySQL").query_one("SELECT 42 AS answer")
            value = int(row["answer"])
            cache.set("work:answer", value, expire=60)  # type: ignore[union-attr]
        return here(answer=value)


class SessionView:
    """``GET /session``: the visitor's session as this node sees it (read-only)."""

    def GET(self) -> dict[str, Any]:  # noqa: N802
        """Show the session."""
        s = _require(session, "the session store")
        return here(user=s.user, count=s.count)


class Login:
    """``POST /session/login`` with ``user=``: start a session."""

    def POST(self) -> dict[str, Any]:  # noqa: N802
        """Log in."""
        s = _require(session, "the session store")
        s.regenerate()
        s.user = web.input(user="").user
        s.count = 0
        return here(user=s.user, count=s.count)


class SessionIncr:
    """``POST /session/incr``: change the session on whichever node serves it."""

    def POST(self) -> dict[str, Any]:  # noqa: N802
        """Count one more."""
        s = _require(session, "the session store")
        s.count += 1
        return here(user=s.user, count=s.count)


class Counter:
    """``GET /counter/<name>``: a counter kept in the ring."""

    def GET(self, name: str) -> dict[str, Any]:  # noqa: N802
        """Read it."""
        return here(value=_require(cache, "memcached").get("counter:" + name))


class CounterIncr:
    """``POST /counter/<name>/incr``: add one, atomically in memcached."""

    def POST(self, name: str) -> dict[str, Any]:  # noqa: N802
        """Add one."""
        c = _require(cache, "memcached")
        value = c.incr("counter:" + name)
        if value is None:
            c.add("counter:" + name, 0)
            value = c.incr("counter:" + name)
        return here(value=value)


class Value:
    """``GET/PUT /value/<key>``: a JSON value kept in the ring."""

    def GET(self, key: str) -> dict[str, Any]:  # noqa: N802
        """Read it."""
        return here(value=_require(cache, "memcached").get("value:" + key))

    def PUT(self, key: str) -> dict[str, Any]:  # noqa: N802
        """Write it."""
        value = web.json()
        stored = _require(cache, "memcached").set("value:" + key, value)
        return here(stored=stored, value=value)


def websocket_echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``/ws/echo``: a WebSocket echo on uWSGI's native API, naming the node first."""
    # Plain WSGI, outside the app: after the handshake uWSGI owns the
    # connection and no status line may be written any more.
    try:
        import uwsgi
    except ImportError:
        start_response("501 Not Implemented", [("Content-Type", "text/plain")])
        return [b"WebSocket echo needs uWSGI"]
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY")
    if not key:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"not a WebSocket handshake"]
    uwsgi.websocket_handshake(key, environ.get("HTTP_ORIGIN", ""))
    uwsgi.websocket_send(f"hello from {NODE}".encode())
    while True:
        try:
            msg = uwsgi.websocket_recv()
        except OSError:  # the client closed
            return []
        uwsgi.websocket_send(msg)


_webmini_app = app.wsgifunc()


def application(environ: dict[str, Any], start_response: Any) -> Any:
    """The WSGI entry point: the WebSocket echo, or the webmini app."""
    if environ.get("PATH_INFO") == "/ws/echo":
        return websocket_echo(environ, start_response)
    return _webmini_app(environ, start_response)
