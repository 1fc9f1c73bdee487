"""webmini.ops.metrics and webmini.ops.health against real apps, MariaDB and memcached."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from support import free_port
from support.mariadb import MariaDBServer
from support.memcached import MemcachedCluster

import webmini as web
from localservices import wait_until
from webmini.ops import health
from webmini.ops.metrics import CONTENT_TYPE, Metrics
from webmini.stores.cache import Cache
from webmini.stores.mysql import Database
from webmini.testing import TestClient

_LABEL = r'[a-z_]+="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf'^(webmini_[a-z_]+)\{{{_LABEL}(,{_LABEL})*\}} (-?[0-9.e+-]+|\+Inf)$')


def make_app(metrics: Metrics) -> web.application:
    """An app with fast, slow, missing, failing and forbidden pages, and /metrics."""

    class Ok:
        def GET(self) -> str:
            return "ok"

    class Slow:
        def GET(self) -> str:
            gevent.sleep(0.06)
            return "slow"

    class Boom:
        def GET(self) -> str:
            raise RuntimeError("boom")

    class Deny:
        def GET(self) -> str:
            raise web.forbidden()

    app = web.application(("/ok", Ok, "/slow", Slow, "/boom", Boom, "/deny", Deny,
                           "/metrics", metrics.handler), {})
    app.add_processor(metrics.processor)
    return app


def parse(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample; fails on a malformed line."""
    samples: dict[str, float] = {}
    families: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.append(line.split()[2])
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        samples[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1].replace("+Inf", "inf"))
    assert len(families) == len(set(families)), "a family is declared twice"
    return samples


def value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for key, v in samples.items():
        metric, _, rest = key.partition("{")
        if metric == name and all(f'{k}="{val}"' in rest for k, val in labels.items()):
            total += v
    return total


def test_processor_counts_status_codes_and_latency() -> None:
    """Every request is counted under its final status code and timed into the histogram."""
    metrics = Metrics(labels={"node": "n1"})
    client = TestClient(make_app(metrics))
    for path, times in (("/ok", 5), ("/slow", 2), ("/boom", 1), ("/deny", 1), ("/nope", 3)):
        for _ in range(times):
            client.get(path)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers.get("Content-Type") == CONTENT_TYPE
    s = parse(response.text)
    assert value(s, "webmini_requests_total", code="200") == 7
    assert value(s, "webmini_requests_total", code="500") == 1
    assert value(s, "webmini_requests_total", code="403") == 1
    assert value(s, "webmini_requests_total", code="404") == 3
    assert value(s, "webmini_requests_total", node="n1", worker="0", pid=str(os.getpid())) == 12
    assert value(s, "webmini_request_duration_seconds_count") == 12
    assert value(s, "webmini_request_duration_seconds_sum") >= 0.12
    # Cumulative buckets: the two 60 ms requests are above 50 ms, all are below 10 s.
    assert value(s, "webmini_request_duration_seconds_bucket", le="0.05") == 10
    assert value(s, "webmini_request_duration_seconds_bucket", le="0.1") == 12
    assert value(s, "webmini_request_duration_seconds_bucket", le="+Inf") == 12
    for route in ("/ok", "/slow", "/boom", "/deny", "(unmatched)"):
        buckets = [v for k, v in s.items()
                   if k.startswith("webmini_request_duration_seconds_bucket")
                   and f'route="{route}"' in k]
        assert buckets and buckets == sorted(buckets)
    # The route label is the URL-table row, never the raw path: the 404s share one series.
    assert value(s, "webmini_requests_total", code="404", route="(unmatched)") == 3
    assert value(s, "webmini_requests_total", code="500", route="/boom") == 1
    assert value(s, "webmini_request_duration_seconds_count", route="/slow") == 2
    # The /metrics request itself is in flight while it renders.
    assert value(s, "webmini_requests_in_flight") == 1


def test_concurrent_requests_in_flight_and_counted() -> None:
    """50 greenlets at once: all counted, in-flight back to zero afterwards."""
    metrics = Metrics()
    client = TestClient(make_app(metrics), validate=False)
    gevent.joinall([gevent.spawn(client.get, "/slow") for _ in range(50)], raise_error=True)
    assert metrics.request_counts() == {("/slow", "200"): 50}
    assert metrics.in_flight == 0
    assert sum(metrics.latency()["/slow"][:-1]) == 50


def test_label_values_are_escaped() -> None:
    """A label value with quotes or a newline cannot break the exposition."""
    metrics = Metrics(labels={"node": 'a"b\nc'})
    TestClient(make_app(metrics)).get("/ok")
    text = metrics.render()
    assert 'node="a\\"b\\nc"' in text
    parse(text)


def test_spool_shows_every_live_worker(tmp_path: Path) -> None:
    """With spool_dir, /metrics on one process shows another live process's series."""
    spool = tmp_path / "spool"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        import webmini as web
        from webmini.ops.metrics import Metrics
        from webmini.testing import TestClient
        class Hi:
            def GET(self):
                return "hi"
        m = Metrics(spool_dir={str(spool)!r})
        app = web.application(("/hi", Hi), {{}})
        app.add_processor(m.processor)
        c = TestClient(app)
        for _ in range(7):
            c.get("/hi")
        m.flush()
        print("ready", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        metrics = Metrics(spool_dir=str(spool))
        TestClient(make_app(metrics)).get("/ok")
        s = parse(metrics.render())
        assert value(s, "webmini_requests_total", pid=str(child.pid), code="200") == 7
        assert value(s, "webmini_requests_total", pid=str(os.getpid()), code="200") == 1
        assert (spool / f"worker-{os.getpid()}.json").exists()
    finally:
        child.kill()
        child.wait()
    # A worker that exited drops out (and its file is removed).
    s = parse(metrics.render())
    assert value(s, "webmini_requests_total", pid=str(child.pid)) == 0
    assert not (spool / f"worker-{child.pid}.json").exists()


def test_trailing_flush_spools_the_last_requests(tmp_path: Path) -> None:
    """Under gevent, the requests after a flush reach the spool within one interval."""
    spool = tmp_path / "spool"
    # An interval the five in-process requests fit in even on a loaded machine.
    metrics = Metrics(spool_dir=str(spool), flush_interval=1.0)
    client = TestClient(make_app(metrics))
    for _ in range(5):
        client.get("/ok")  # the first one flushes at once, the other four wait
    snapshot = spool / f"worker-{os.getpid()}.json"

    def spooled_ok() -> float:
        lines = [line for _, line in json.loads(snapshot.read_text())["samples"]]
        return value(parse("\n".join(lines)), "webmini_requests_total", code="200")

    assert spooled_ok() == 1
    assert wait_until(lambda: spooled_ok() == 5, 5)  # the trailing flush, ~1 s later


def test_pool_and_ring_gauges(mariadb: MariaDBServer, memcached: MemcachedCluster) -> None:
    """MySQL pool and memcached ring state appear, and follow a node going down."""
    db = Database(**mariadb.params(), pool_size=3)
    cache = Cache(memcached.addresses, retry_delay=30)
    metrics = Metrics(db=db, cache=cache)
    try:
        assert db.query_one("SELECT 1 AS one") == {"one": 1}
        cache.set("k", "v")
        s = parse(metrics.render())
        assert value(s, "webmini_db_pool_connections", state="idle") == 1
        assert value(s, "webmini_db_pool_connections", state="in_use") == 0
        assert value(s, "webmini_db_pool_size") == 3
        assert value(s, "webmini_db_pool_connects_total") == 1
        assert value(s, "webmini_cache_node_up") == 3
        owner = cache.node_for("k")
        index = memcached.addresses.index(owner)
        memcached.nodes[index].kill()
        assert cache.get("k") is None  # the failure marks the node down
        s = parse(metrics.render())
        assert value(s, "webmini_cache_node_up", node=owner) == 0
        assert value(s, "webmini_cache_node_up") == 2
        assert value(s, "webmini_cache_node_failures_total", node=owner) == 1
    finally:
        db.close()
        cache.close()


# -- health ----------------------------------------------------------------


def health_app(**kw: Any) -> TestClient:
    """An app with /healthz and /livez."""
    kw.setdefault("details", True)
    app = web.application(("/healthz", health.readiness(**kw), "/livez", health.liveness()), {})
    return TestClient(app)


def test_ready_when_pool_and_ring_answer(mariadb: MariaDBServer,
                                         memcached: MemcachedCluster) -> None:
    """200 with per-check details."""
    db = Database(**mariadb.params(), pool_size=2)
    client = health_app(db=db, cache=Cache(memcached.addresses), node="n7")
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert response.headers.get("Content-Type") == "application/json"
    assert body["ready"] is True and body["node"] == "n7"
    assert body["db"]["ok"] is True and body["db"]["pool"]["pool_size"] == 2
    assert body["cache"] == {**body["cache"], "ok": True, "up": 3, "required": 1}
    assert client.get("/livez").json() == {"alive": True}
    db.close()


def test_not_ready_when_the_ring_is_gone(memcached: MemcachedCluster) -> None:
    """Fewer answering memcached nodes than required: 503, with the nodes listed."""
    cache = Cache(memcached.addresses, retry_delay=0.01)
    memcached.nodes[0].kill()
    response = health_app(cache=cache, min_cache_nodes=3).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["cache"]["up"] == 2
    assert body["cache"]["nodes"][memcached.addresses[0]] is False
    assert health_app(cache=cache, min_cache_nodes=2).get("/healthz").status_code == 200
    for node in memcached.nodes[1:]:
        node.kill()
    time.sleep(0.02)
    assert health_app(cache=cache).get("/healthz").status_code == 503


def test_not_ready_when_mysql_refuses() -> None:
    """Nothing listens on the DB port: 503 naming the error, no exception."""
    db = Database(port=free_port(), user="x", connect_timeout=1, acquire_timeout=1)
    response = health_app(db=db).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["db"]["ok"] is False and "ConnectError" in body["db"]["error"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never says a word."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        yield int(s.getsockname()[1])
    finally:
        s.close()


def test_readiness_is_bounded_when_mysql_hangs(silent_server: int) -> None:
    """A hung database makes the probe fail after ``timeout``, not after the driver's 30 s."""
    db = Database(port=silent_server, user="x", connect_timeout=30, acquire_timeout=30)
    start = time.monotonic()
    response = health_app(db=db, timeout=0.3).get("/healthz")
    elapsed = time.monotonic() - start
    assert response.status_code == 503
    assert "timed out" in response.json()["db"]["error"]
    assert elapsed < 2.0


def test_extra_checks_count() -> None:
    """User checks join the report; a failing one makes the worker not ready."""
    def disk() -> dict[str, Any]:
        return {"free": 123}

    def broken() -> None:
        raise OSError("read-only file system")

    ok = health_app(checks={"disk": disk}).get("/healthz")
    assert ok.status_code == 200 and ok.json()["disk"] == {**ok.json()["disk"], "free": 123}
    bad = health_app(checks={"disk": disk, "fs": broken}).get("/healthz")
    assert bad.status_code == 503
    assert bad.json()["fs"]["error"] == "OSError: read-only file system"


def test_healthz_body_names_no_hosts_or_users_by_default() -> None:
    """Without ``details=True`` a failing check says only that it failed."""
    port = free_port()  # nothing listens there
    db = Database(host="127.0.0.1", port=port, user="secretuser", password="pw",
                  connect_timeout=0.5, acquire_timeout=0.5)
    cache = Cache([f"127.0.0.1:{free_port()}"], socket_timeout=0.2)
    app = web.application(("/healthz", health.readiness(db=db, cache=cache)), {})
    response = TestClient(app).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["db"] == {"ok": False}
    assert body["cache"] == {"ok": False}
    text = response.text
    assert "secretuser" not in text and "127.0.0.1" not in text and str(port) not in text
    db.close()
