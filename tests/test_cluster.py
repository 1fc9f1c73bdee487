"""Three real uWSGI nodes behind real nginx, with the memcached ring and MariaDB.

The cluster runs the shipped deploy/ files (nginx.conf, node1.ini,
node-common.ini, cluster_app.py) with only addresses and paths rewritten
(localservices/cluster.py). Every answer names the node, worker and pid that
served it, so the tests can see requests move between nodes.
"""

from __future__ import annotations

import configparser
import http.client
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
import websocket
from support.mariadb import MariaDBServer
from support.memcached import MemcachedCluster

from localservices import wait_until
from localservices.cluster import DEPLOY, ClusterError, LocalCluster, Node

Reply = tuple[int, dict[str, str], Any]


def call(base: str, method: str, path: str, body: Any = None,
         cookie: str | None = None, timeout: float = 15.0) -> Reply:
    """One request on a fresh connection; return (status, lower-cased headers, JSON or text)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"Connection": "close"}
    data = None
    if cookie:
        headers["Cookie"] = cookie
    if body is not None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        headers["Content-Type"] = ("application/json" if not isinstance(body, bytes)
                                   else "application/x-www-form-urlencoded")
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = raw.decode(errors="replace")
    return resp.status, hdrs, payload


def session_cookie(headers: dict[str, str]) -> str:
    """The ``name=value`` part of the session's Set-Cookie."""
    match = re.match(r"(webmini_session=[^;]+)", headers.get("set-cookie", ""))
    assert match, headers
    return match.group(1)


@pytest.fixture(scope="module")
def cluster(mariadb: MariaDBServer, memcached_cluster: MemcachedCluster) -> Iterator[LocalCluster]:
    """Three nodes + nginx for this module (memcached emptied first)."""
    memcached_cluster.reset()
    c = LocalCluster(3, db_url=mariadb.url + "?pool_size=4&acquire_timeout=2",
                     memcached=memcached_cluster.addresses, secret=secrets.token_urlsafe(32))
    try:
        c.start()
    except ClusterError as exc:
        pytest.fail(f"cannot start the local cluster: {exc}", pytrace=False)
    try:
        yield c
    finally:
        c.stop()
        memcached_cluster.reset()


def test_shipped_node_files_match_the_nginx_upstream() -> None:
    """node1..3.ini and the upstream in nginx.conf name the same uwsgi sockets."""
    sockets = []
    for i in (1, 2, 3):
        ini = configparser.ConfigParser(strict=False, interpolation=None)
        ini.read(DEPLOY / f"node{i}.ini")
        assert ini["uwsgi"]["ini"] == "%dnode-common.ini"
        text = (DEPLOY / f"node{i}.ini").read_text()
        # uwsgi.ini's placeholder, set before node-common.ini includes it
        sockets += re.findall(r"^set-ph = webmini_socket=(\S+)$", text, flags=re.M)
        assert text.index("set-ph = webmini_socket=") < text.index("ini = ")
        assert f"WEBMINI_NODE=node{i}" in text
    assert re.search(r"^ini = %d\.\./uwsgi\.ini$", (DEPLOY / "node-common.ini").read_text(),
                     flags=re.M)
    upstream = re.findall(r"^\s*server unix:(\S+) ", (DEPLOY / "nginx.conf").read_text(),
                          flags=re.M)
    assert upstream == sockets
    assert all(s.startswith("/run/webmini/") for s in sockets)  # unix sockets, never TCP
    conf = (DEPLOY / "nginx.conf").read_text()
    # Retries for idempotent requests only.
    assert re.search(r"uwsgi_next_upstream error timeout http_503;", conf)
    assert "non_idempotent" not in re.sub(r"#.*", "", conf)


def test_requests_spread_over_all_nodes(cluster: LocalCluster) -> None:
    """Round robin through nginx reaches every node, and both workers of every node."""
    nodes: Counter[str] = Counter()
    workers: set[tuple[str, int]] = set()

    def one() -> None:
        status, _, body = call(cluster.url, "GET", "/node")
        assert status == 200
        nodes[body["node"]] += 1
        workers.add((body["node"], body["pid"]))

    gevent.joinall([gevent.spawn(one) for _ in range(90)], raise_error=True)
    assert set(nodes) == {"node1", "node2", "node3"}
    assert min(nodes.values()) >= 10, nodes
    # Which worker of a node accepts is the kernel's and uWSGI's choice (one gevent
    # worker may take a whole burst while the other sleeps): send bursts until every
    # worker has answered; a worker that never accepts fails the test.
    for _ in range(30):
        if len(workers) >= 6:
            break
        gevent.joinall([gevent.spawn(one) for _ in range(30)], raise_error=True)
    assert len(workers) == 6, workers  # 3 nodes x 2 workers (deploy/node-common.ini)


def test_cache_is_consistent_across_nodes(cluster: LocalCluster) -> None:
    """A counter bumped through each node, and a value written through one, read the same via all."""
    for node in cluster.nodes:
        for _ in range(4):
            status, _, body = call(node.url, "POST", "/counter/hits/incr")
            assert status == 200 and body["node"] == node.name
    for node in cluster.nodes:
        status, _, body = call(node.url, "GET", "/counter/hits")
        assert (status, body["value"], body["node"]) == (200, 12, node.name)

    status, _, body = call(cluster.nodes[0].url, "PUT", "/value/config",
                           {"flag": True, "n": [1, 2]})
    assert status == 200 and body["stored"] is True
    for node in cluster.nodes:
        assert call(node.url, "GET", "/value/config")[2]["value"] == {"flag": True, "n": [1, 2]}


def test_session_moves_between_nodes(cluster: LocalCluster) -> None:
    """Log in on node1, change the session on node2 and node3, read it through nginx."""
    n1, n2, n3 = cluster.nodes
    status, headers, body = call(n1.url, "POST", "/session/login", b"user=ada")
    assert (status, body["node"], body["user"], body["count"]) == (200, "node1", "ada", 0)
    cookie = session_cookie(headers)
    for expected, node in enumerate((n2, n3, n1, n2), start=1):
        status, _, body = call(node.url, "POST", "/session/incr", cookie=cookie)
        assert (status, body["node"], body["user"], body["count"]) == (
            200, node.name, "ada", expected)
    seen = set()
    for _ in range(12):
        status, _, body = call(cluster.url, "GET", "/session", cookie=cookie)
        assert (status, body["user"], body["count"]) == (200, "ada", 4)
        seen.add(body["node"])
    assert seen == {"node1", "node2", "node3"}
    # A forged cookie is a fresh, empty session on every node.
    forged = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
    status, _, body = call(n3.url, "GET", "/session", cookie=forged)
    assert (status, body["user"], body["count"]) == (200, None, 0)


def test_health_metrics_and_stats_per_node(cluster: LocalCluster) -> None:
    """/healthz reports the pool and the ring; /metrics covers both workers; uWSGI stats answer."""
    node = cluster.nodes[1]
    status, headers, body = call(node.url, "GET", "/healthz")
    assert status == 200 and headers["cache-control"] == "no-store"
    assert body["ready"] is True and body["node"] == "node2"
    assert body["db"]["ok"] is True and body["db"]["pool"]["pool_size"] == 4
    assert body["cache"]["ok"] is True and body["cache"]["up"] == 3

    def scrape() -> tuple[str, Counter[tuple[str, str, str]]]:
        """/metrics' text and its request counts by (worker, code, route)."""
        status, headers, text = call(node.url, "GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        counts: Counter[tuple[str, str, str]] = Counter()
        for worker, code, route, n in re.findall(
                r'^webmini_requests_total\{node="node2",worker="(\d)",pid="\d+",'
                r'code="(\d+)",route="([^"]*)"\} (\d+)$', text, flags=re.M):
            counts[worker, code, route] += int(n)
        return text, counts

    def served(counts: Counter[tuple[str, str, str]], code: str, route: str) -> int:
        return sum(n for (_, c, r), n in counts.items() if (c, r) == (code, route))

    def settled() -> Counter[tuple[str, str, str]]:
        """Counts once two scrapes a flush interval apart agree: every worker's
        snapshot includes its last request (the trailing flush, timer-driven)."""
        _, last = scrape()
        for _ in range(20):
            time.sleep(1.2)  # > the app's flush_interval (1 s)
            _, now = scrape()
            if all(served(now, c, r) == served(last, c, r)
                   for c, r in (("200", "/work"), ("404", "(unmatched)"))):
                return now
            last = now
        pytest.fail(f"/metrics never settled: {last}")

    before = settled()
    # Concurrent bursts until both workers have served some (which worker accepts is
    # uWSGI's and the kernel's choice: one may take a whole burst).
    sent, pids = 0, set()
    while len(pids) < 2 and sent < 600:
        burst = [gevent.spawn(call, node.url, "GET", "/work") for _ in range(60)]
        gevent.joinall(burst, raise_error=True)
        sent += len(burst)
        pids |= {job.value[2]["pid"] for job in burst}
    assert len(pids) == 2, pids
    for _ in range(10):
        call(node.url, "GET", "/no-such-page")

    # Whichever worker answers, /metrics tells both workers' exact counts (each
    # worker's spooled snapshot catches up within its flush interval: polled).
    def caught_up() -> bool:
        _, now = scrape()
        return (served(now, "200", "/work") - served(before, "200", "/work") >= sent
                and served(now, "404", "(unmatched)") - served(before, "404", "(unmatched)") >= 10)

    assert wait_until(caught_up, 15, interval=0.2)
    after = settled()
    text, _ = scrape()
    assert {w for w, c, r in after if (c, r) == ("200", "/work")} == {"1", "2"}, text
    assert served(after, "200", "/work") - served(before, "200", "/work") == sent
    assert served(after, "404", "(unmatched)") - served(before, "404", "(unmatched)") == 10
    assert re.search(r'^webmini_request_duration_seconds_bucket\{.*le="\+Inf"\} \d+$', text, re.M)
    assert len(re.findall(r'^webmini_cache_node_up\{.*\} 1$', text, re.M)) >= 3
    assert re.search(r'^webmini_db_pool_size\{node="node2".*\} 4$', text, re.M)
    assert text.count("# TYPE webmini_requests_total counter") == 1

    stats = node.stats()
    assert len(stats["workers"]) == 2
    # At least what this test sent the node itself: /healthz, the bursts, the 404s.
    assert sum(w["requests"] for w in stats["workers"]) >= 1 + sent + 10
    assert stats["listen_queue"] == 0

    # Through the balancer: metrics are not exposed, readiness only from loopback.
    assert call(cluster.url, "GET", "/metrics")[0] == 403
    assert call(cluster.url, "GET", "/healthz")[0] == 200


def test_websocket_upgrade_through_nginx(cluster: LocalCluster) -> None:
    """uwsgi_pass tunnels a WebSocket: handshake, node greeting and echo through nginx."""
    ws_url = cluster.url.replace("http://", "ws://") + "/ws/echo"
    greetings = set()
    for _ in range(3):
        ws = websocket.create_connection(ws_url, timeout=5)
        try:
            greeting = ws.recv()
            assert re.fullmatch(r"hello from node[123]", greeting)
            greetings.add(greeting)
            for i in range(3):
                ws.send(f"ping {i}")
                assert ws.recv() == f"ping {i}"
        finally:
            ws.close()
    assert len(greetings) >= 2  # the upgrades were balanced too


class Load:
    """A bounded gevent client loop through nginx: idempotent requests only."""

    def __init__(self, cluster: LocalCluster, sessions: list[tuple[str, str]]) -> None:
        self.cluster = cluster
        self.sessions = sessions
        self.running = True
        self.failures: list[str] = []
        self.served: list[tuple[float, str, int]] = []  # (time, node, pid)
        self.puts = 0
        # (first attempt started, failed, what): see send()
        self.retried: list[tuple[float, float, str]] = []

    def send(self, method: str, path: str, body: Any = None, cookie: str | None = None) -> Reply:
        """One idempotent request, sent again once if the connection closed with no answer.

        RFC 9110 9.2.2 lets a client retry an idempotent request on such a
        close; each retry is recorded with the monotonic times the first
        attempt started and failed, and the test bounds them. The SIGKILL
        of a node's master (its workers die with it: no-orphans) cuts a
        request off this way: nginx sends a request to the next node when the
        dead node refused, reset or closed the connection before the
        response's head, but once it has read the head it cannot, and closes
        the client's connection instead (RemoteDisconnected, or
        ConnectionResetError when the close comes as a reset). A graceful
        chain reload (SIGHUP) finishes every request a worker accepted
        before that worker exits (59 runs with nginx's error log kept: no
        error on the reloading node). One close with no answer was seen
        while node2 was starting again, cause not found yet: the test
        prints such retries with nginx's errors.
        """
        started = time.monotonic()
        try:
            return call(self.cluster.url, method, path, body, cookie=cookie)
        except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
            self.retried.append((started, time.monotonic(), f"{method} {path}: {exc!r}"))
            return call(self.cluster.url, method, path, body, cookie=cookie)

    def reader(self, index: int) -> None:
        """GET /session (checking its content) and /work, over and over."""
        user, cookie = self.sessions[index % len(self.sessions)]
        while self.running:
            for path in ("/session", "/work"):
                try:
                    status, _, body = self.send("GET", path, cookie=cookie)
                except Exception as exc:  # any transport error is a failed request
                    self.failures.append(f"GET {path}: {exc!r}")
                    continue
                if status != 200:
                    self.failures.append(f"GET {path}: {status} {body!r:.200}")
                    continue
                if path == "/session" and (body["user"], body["count"]) != (user, 0):
                    self.failures.append(f"session of {user} lost: {body!r}")
                self.served.append((time.monotonic(), body["node"], body["pid"]))

    def writer(self) -> None:
        """PUT an increasing value (PUT is idempotent: nginx may retry it)."""
        while self.running:
            try:
                status, _, body = self.send("PUT", "/value/load", self.puts + 1)
            except Exception as exc:
                self.failures.append(f"PUT: {exc!r}")
                continue
            if status != 200 or body["stored"] is not True:
                self.failures.append(f"PUT: {status} {body!r:.200}")
                continue
            self.puts += 1

    def pids_since(self, since: float, node: str) -> set[int]:
        """Pids of ``node`` that served requests after ``since``."""
        return {pid for t, name, pid in self.served if t >= since and name == node}


def _wait_served(load: Load, node: Node, since: float, old_pids: set[int],
                 timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = load.pids_since(since, node.name) - old_pids
        if fresh:
            return fresh
        gevent.sleep(0.1)
    pytest.fail(f"{node.name} served nothing new within {timeout} s:\n{node.log_tail()}")


def test_failover_under_load(cluster: LocalCluster) -> None:
    """Under steady load: SIGKILL node2's master, restart it, SIGHUP node3: nothing fails.

    Idempotent requests closed with no answer are sent again once (Load.send),
    bounded to 1%: the SIGKILL cuts off what node2 was answering; one such
    close was also seen while node2 started again (cause unknown, reported
    below when it happens).
    """
    sessions = []
    for i in range(4):
        status, headers, _ = call(cluster.url, "POST", "/session/login", f"user=u{i}".encode())
        assert status == 200
        sessions.append((f"u{i}", session_cookie(headers)))

    _, n2, n3 = cluster.nodes
    load = Load(cluster, sessions)
    greenlets = [gevent.spawn(load.reader, i) for i in range(8)]
    greenlets.append(gevent.spawn(load.writer))
    try:
        gevent.sleep(1.5)
        old_n2 = n2.worker_pids()
        old_n3 = n3.worker_pids()
        assert load.pids_since(0, "node2") and load.pids_since(0, "node3")

        # 1. Crash: SIGKILL node2's master (its workers follow: no-orphans).
        kill_at = time.monotonic()
        n2.crash()
        killed_at = time.monotonic()  # every process of node2 is gone
        gevent.sleep(1.5)
        assert not load.pids_since(killed_at + 0.5, "node2")

        # 2. Restart node2 on the same ports; nginx sends it traffic again once
        #    its fail_timeout is over.
        n2.start(new_ports=False)
        restarted_at = time.monotonic()
        _wait_served(load, n2, restarted_at, old_n2, timeout=12)

        # 3. Graceful reload of node3 (SIGHUP: uwsgi.ini's chain reload, one worker
        #    at a time): new workers, no request lost.
        reload_at = time.monotonic()
        n3.reload()
        new_n3 = _wait_served(load, n3, reload_at, old_n3, timeout=20)
        assert wait_until(lambda: n3.worker_pids().isdisjoint(old_n3), 40, interval=0.2), \
            n3.log_tail()
        gevent.sleep(0.5)
    finally:
        load.running = False
        gevent.joinall(greenlets, timeout=20)

    assert not load.failures, load.failures[:10]
    # A close with no answer is rare (at most 1% of requests, each answered again).
    moments = {"kill": kill_at, "restart": restarted_at, "reload": reload_at}

    def when(t: float) -> str:
        return " ".join(f"{t - at:+.3f}s from {name}" for name, at in moments.items())

    report = [f"{what}: started {when(start)}, failed {when(end)}"
              for start, end, what in load.retried]
    assert len(load.retried) <= max(2, len(load.served) // 100), report
    # Not asserted, said: a close with no answer outside the kill (seen once in
    # a full run, 13 ms into a request while node2 was starting up again) has
    # no known cause yet; its times and nginx's errors are printed below
    # (pytest -rP shows them) for whoever looks next.
    outside = [line for (start, end, _), line in zip(load.retried, report, strict=True)
               if not (start <= killed_at and end >= kill_at)]
    if outside:
        print("client retries outside the kill:", *outside, cluster.nginx.log_tail(), sep="\n")
    assert len(load.served) > 300
    assert new_n3 <= n3.worker_pids() and n3.worker_pids().isdisjoint(old_n3)
    assert {name for _, name, _ in load.served} == {"node1", "node2", "node3"}
    # The last value written through the balancer reads the same via every node.
    assert load.puts > 20
    for node in cluster.nodes:
        status, _, body = call(node.url, "GET", "/value/load")
        assert (status, body["value"]) == (200, load.puts)
    # nginx really retried: some requests name two upstreams in the access log.
    def retried() -> list[str]:  # the access log buffer is flushed every second: poll
        return [line for line in cluster.nginx.access_log().splitlines()
                if re.search(r"up=\[[^\]]*, ", line)]

    assert wait_until(lambda: bool(retried()), 5, interval=0.1), "no request was retried"
    per_node = Counter(name for _, name, _ in load.served)
    print(f"failover: {len(load.served)} GETs {dict(per_node)}, {load.puts} PUTs, "
          f"{len(retried())} retried by nginx, {len(load.retried)} resent by the client, 0 failed")
