"""A small webmini app: the one ``uwsgi.ini`` and ``scripts/serve.sh`` serve by default.

Routes: ``GET /`` (hello), ``GET /json``, ``GET /users/<id>``, ``GET /slow`` (waits
100 ms on ``gevent.sleep``, standing for a slow upstream such as MySQL), ``GET /boom``
(raises: a 500, the worker lives on) and ``GET /pid`` (which worker process answered).

Serve it with ``uwsgi --ini uwsgi.ini`` (``application`` below is what uWSGI loads).
"""

from __future__ import annotations

import os

import gevent

import webmini as web

urls = (
    "/", "Index",
    "/json", "Json",
    r"/users/(\d+)", "User",
    "/slow", "Slow",
    "/boom", "Boom",
    "/pid", "Pid",
)

SLOW_SECONDS = 0.1


class Index:
    """``GET /``: a plain-text greeting."""

    def GET(self) -> str:
        """Say hello."""
        web.header("Content-Type", "text/plain; charset=utf-8")
        return "Hello, world!"


class Json:
    """``GET /json``: a small JSON document."""

    def GET(self) -> dict[str, object]:
        """Return a dict (sent as JSON)."""
        return {"message": "Hello, world!", "framework": "webmini"}


class User:
    """``GET /users/<id>``: a path parameter."""

    def GET(self, uid: str) -> dict[str, object]:
        """Echo the user id as JSON."""
        return {"id": int(uid), "name": f"user{uid}"}


class Slow:
    """``GET /slow``: a handler waiting 100 ms on a slow upstream."""

    def GET(self) -> str:
        """Wait without blocking the worker (other greenlets run meanwhile)."""
        gevent.sleep(SLOW_SECONDS)
        return "slow"


class Boom:
    """``GET /boom``: a bug; answered 500 and logged, the worker survives."""

    def GET(self) -> str:
        """Raise an unhandled exception."""
        raise RuntimeError("boom: an unhandled error in a handler")


class Pid:
    """``GET /pid``: the id of the worker process that answered."""

    def GET(self) -> str:
        """Return ``os.getpid()`` as text."""
        web.header("Content-Type", "text/plain; charset=utf-8")
        return str(os.getpid())


app = web.application(urls, globals())
application = app.wsgifunc()

if __name__ == "__main__":
    app.run()
