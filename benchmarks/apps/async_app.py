"""The app benchmarks/async_handlers.py serves: the same waits written sync and ``async def``.

Routes: ``GET /`` (hello, the readiness probe), ``GET /sync`` (waits 100 ms
on ``gevent.sleep``), ``GET /async`` (waits 100 ms on ``asyncio.sleep``),
``GET /db`` (sync: ``SELECT SLEEP(0.05)`` through webmini's MySQL pool, URL in
``WEBMINI_BENCH_DB``), ``GET /upstream`` (``async def``: an aiohttp GET of
``WEBMINI_BENCH_UPSTREAM``, a slow local server).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import gevent

import webmini as web

urls = ("/", "Index", "/sync", "Sync", "/async", "Async", "/db", "Db", "/upstream", "Upstream")

_db: Any = None
_session: Any = None


class Index:
    """``GET /``."""

    def GET(self) -> str:
        """Say hello."""
        return "Hello, world!"


class Sync:
    """``GET /sync``: a 100 ms wait on the gevent hub."""

    def GET(self) -> str:
        """Wait, then answer."""
        gevent.sleep(0.1)
        return "slept"


class Async:
    """``GET /async``: a 100 ms wait on the worker's asyncio loop."""

    async def GET(self) -> str:
        """Wait, then answer."""
        await asyncio.sleep(0.1)
        return "slept"


class Db:
    """``GET /db``: a sync handler waiting on MariaDB through the pool."""

    def GET(self) -> dict[str, Any]:
        """One 50 ms query."""
        global _db
        if _db is None:
            from webmini.stores.mysql import Database

            _db = Database.from_url(os.environ["WEBMINI_BENCH_DB"])
        row = _db.query_one("SELECT SLEEP(0.05) AS s")
        return {"s": row.s if row else None}


class Upstream:
    """``GET /upstream``: an ``async def`` handler awaiting an aiohttp call."""

    async def GET(self) -> bytes:
        """Fetch the slow upstream and answer with its body."""
        global _session
        import aiohttp

        if _session is None:
            _session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True))
        async with _session.get(os.environ["WEBMINI_BENCH_UPSTREAM"]) as resp:
            return await resp.read()


application = web.application(urls, globals()).wsgifunc()

