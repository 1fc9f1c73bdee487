"""A memcached node's return loses nothing written while it was away (real memcached processes).

Sessions on a killed node are lost (its memory is gone); the visitors log
in again and their new sessions land on the next node of the ring. When
the node comes back, its keys return to it; those new sessions must still
be found, by the worker that saw the outage and by one started after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import gevent
import pytest
from support.memcached import MemcachedCluster, raw_command

import webmini as web
from webmini.stores.cache import Cache
from webmini.stores.sessions import CacheStore, Session
from webmini.testing import Browser, TestClient

RETRY_DELAY = 0.5
SECRET = "operations-secret-0123456789abcdef"
USERS = 40


def _cache(memcached: MemcachedCluster) -> Cache:
    return Cache(memcached.addresses, pool_size=4, socket_timeout=0.3, retry_delay=RETRY_DELAY)


def _app(cache: Cache) -> web.application:
    class Login:
        def POST(self) -> str:
            session.regenerate()
            session.user = web.input().user
            return "ok"

    class Me:
        def GET(self) -> str:
            user = session.get("user")
            if not user:
                raise web.Unauthorized("login required")
            return str(user)

    app = web.application(("/login", "Login", "/me", "Me"), {"Login": Login, "Me": Me})
    session = Session(app, CacheStore(cache), secret=SECRET)
    return app


@pytest.fixture
def caches(memcached: MemcachedCluster) -> Iterator[list[Cache]]:
    made: list[Cache] = []
    yield made
    for c in made:
        c.close()


def test_a_returning_node_logs_nobody_out(memcached: MemcachedCluster, caches: list[Cache]) -> None:
    worker = _cache(memcached)
    caches.append(worker)
    app = _app(worker)
    browsers = [Browser(app) for _ in range(USERS)]
    for n, b in enumerate(browsers):
        assert b.post("/login", data={"user": f"u{n}"}).status_code == 200
    victim = memcached.nodes[0]
    victim.kill()
    # Those whose session lived on the victim are logged out (expected) and log in again.
    logged_out = [n for n, b in enumerate(browsers) if b.get("/me").status_code == 401]
    assert 0 < len(logged_out) < USERS
    for n in logged_out:
        assert browsers[n].post("/login", data={"user": f"u{n}"}).status_code == 200
    assert all(b.get("/me").status_code == 200 for b in browsers)

    victim.restart()
    gevent.sleep(RETRY_DELAY + 0.3)
    # The worker that saw the outage: nobody is logged out by the return.
    again = [n for n, b in enumerate(browsers) if b.get("/me").status_code != 200]
    assert again == []
    assert worker.stats()["nodes"][victim.address]["up"] is True
    # A worker started after the return (a reload): the node's uptime says it is back.
    late = _cache(memcached)
    caches.append(late)
    late_app = _app(late)
    for n, b in enumerate(browsers):
        reply = TestClient(late_app).get("/me", headers={"Cookie": _cookie(b)})
        assert reply.status_code == 200 and reply.body == f"u{n}".encode()


def _cookie(browser: Browser) -> str:
    return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def test_a_rewritten_key_leaves_no_outage_copy_behind(memcached: MemcachedCluster,
                                                      caches: list[Cache]) -> None:
    """Rewritten on its owner after the return, a key's outage copy is deleted (no stale read)."""
    cache = _cache(memcached)
    caches.append(cache)
    victim = memcached.nodes[1]
    key = next(f"rw:{i}" for i in range(1000) if cache.node_for(f"rw:{i}") == victim.address)
    victim.kill()
    cache.get(key)  # marks it down
    assert cache.set(key, "during") is True  # on the next node
    victim.restart()
    gevent.sleep(RETRY_DELAY + 0.3)
    assert cache.get(key) == "during"
    assert cache.set(key, "after") is True  # on the owner; the copy elsewhere goes
    # Evicted (or expired) on the owner: a miss, never the older copy.
    assert raw_command(victim.address, b"delete " + key.encode(), ends=(b"\r\n",)) == b"DELETED\r\n"
    assert cache.get(key) is None
