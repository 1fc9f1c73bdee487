"""webmini.stores.cache against three real memcached processes."""

from __future__ import annotations

import pickle
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import gevent.event
import pytest
from support.memcached import MemcachedCluster, raw_command

from localservices import wait_until
from webmini.stores.cache import Cache

SOCKET_TIMEOUT = 0.3
RETRY_DELAY = 0.5


@pytest.fixture
def cache(memcached: MemcachedCluster) -> Iterator[Cache]:
    c = Cache(memcached.addresses, pool_size=4, socket_timeout=SOCKET_TIMEOUT,
              retry_delay=RETRY_DELAY)
    yield c
    c.close()


def test_values_round_trip(cache: Cache) -> None:
    values = {
        "s": "héllo", "b": b"\x00\xffraw", "i": 42, "neg": -7, "f": 1.5, "t": True,
        "d": {"user": 1, "roles": ["a", "b"]}, "l": [1, "x", None], "n": None,
    }
    for key, value in values.items():
        assert cache.set(key, value) is True
    for key, value in values.items():
        got = cache.get(key, default="MISSING")
        assert got == value and type(got) is type(value), key
    assert cache.get("absent") is None
    assert cache.get("absent", default=0) == 0


def test_add_delete_incr_decr(cache: Cache) -> None:
    assert cache.add("k", "first") is True
    assert cache.add("k", "second") is False
    assert cache.get("k") == "first"
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert cache.incr("counter") is None
    cache.set("counter", 10)
    assert cache.incr("counter") == 11
    assert cache.incr("counter", 5) == 16
    assert cache.decr("counter", 20) == 0
    assert cache.get("counter") == 0
    cache.set("text", "abc")
    assert cache.incr("text") is None  # memcached refuses: not a number


def test_expiry(cache: Cache) -> None:
    cache.set("gone", "x", expire=-1)  # memcached: a negative expiry is already expired
    assert cache.get("gone") is None
    cache.set("short", "x", expire=1)
    cache.set("long", "x", expire=60)
    assert cache.get("short") == "x"
    # memcached's clock has a 1-second resolution: gone within two seconds.
    assert wait_until(lambda: cache.get("short") is None, 3.0, interval=0.1)
    assert cache.get("long") == "x"


def test_multi_spans_nodes(cache: Cache, memcached: MemcachedCluster) -> None:
    items = {f"m:{i}": {"n": i} for i in range(300)}
    assert cache.set_multi(items, expire=60) == []
    owners = {cache.node_for(k) for k in items}
    assert owners == set(memcached.addresses)
    got = cache.get_multi(list(items) + ["m:absent"])
    assert got == items
    # Each key is physically on the node the ring names.
    everything = b"get " + b" ".join(k.encode() for k in items)
    for node in memcached.addresses:
        mine = {k for k in items if cache.node_for(k) == node}
        lines = raw_command(node, everything).split(b"\r\n")
        stored = {line.split()[1].decode() for line in lines if line.startswith(b"VALUE")}
        assert stored == mine


def test_keys_are_validated(cache: Cache) -> None:
    for bad in ["", "a b", "a\r\nflush_all", "x" * 251, "tab\there"]:
        with pytest.raises(ValueError):
            cache.get(bad)
        with pytest.raises(ValueError):
            cache.set(bad, 1)
    assert cache.set("ünïcode:ключ", 1) is True
    assert cache.get("ünïcode:ключ") == 1


def test_key_prefix(memcached: MemcachedCluster) -> None:
    a = Cache(memcached.addresses, key_prefix="app1:")
    b = Cache(memcached.addresses, key_prefix="app2:")
    a.set("k", "from a")
    assert b.get("k") is None
    assert a.get_multi(["k"]) == {"k": "from a"}


def test_never_unpickles(cache: Cache, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Evil())
    node = cache.node_for("evil")
    assert node is not None
    # Written the way python-memcached writes a pickled object: flags = 1.
    reply = raw_command(node, b"set evil 1 0 %d\r\n%s" % (len(payload), payload))
    assert reply.startswith(b"STORED")
    assert cache.get("evil", default="miss") == "miss"
    assert cache.get_multi(["evil"]) == {}
    assert not marker.exists()


def test_unserializable_value_raises(cache: Cache) -> None:
    with pytest.raises(TypeError):
        cache.set("obj", object())


def test_dead_node_under_load(cache: Cache, memcached: MemcachedCluster) -> None:
    victim = memcached.nodes[1]
    keys = [f"load:{i}" for i in range(600)]
    cache.set_multi({k: k for k in keys})
    assert any(cache.node_for(k) == victim.address for k in keys)
    # A key of the victim's that the workers do not touch.
    moved = next(
        k for k in (f"mine:{i}" for i in range(1000)) if cache.node_for(k) == victim.address
    )

    errors: list[BaseException] = []
    slowest = [0.0]
    stop = gevent.event.Event()

    def worker(n: int) -> None:
        i = n
        while not stop.is_set():
            key = keys[i % len(keys)]
            i += 7
            started = time.monotonic()
            try:
                value = cache.get(key)
                assert value in (key, None)
                cache.set(key, key)
            except BaseException as e:  # noqa: BLE001 - the test collects them
                errors.append(e)
                return
            slowest[0] = max(slowest[0], time.monotonic() - started)
            gevent.sleep(0)

    workers = [gevent.spawn(worker, n) for n in range(50)]
    gevent.sleep(0.2)
    victim.kill()
    gevent.sleep(0.3)
    down = cache.stats()
    assert down["nodes"][victim.address]["up"] is False
    assert down["down"] == 1
    # Its keys now fall to the next node on the ring: usable, not just misses.
    assert cache.node_for(moved) not in (None, victim.address)
    assert cache.set(moved, "on the fallback") is True
    assert cache.get(moved) == "on the fallback"

    victim.restart()
    gevent.sleep(RETRY_DELAY + 0.3)
    stop.set()
    gevent.joinall(workers, timeout=5)
    assert errors == []
    # Each operation pair finished within the socket timeout (with margin).
    assert slowest[0] < 2 * SOCKET_TIMEOUT + 0.5
    up = cache.stats()
    assert up["nodes"][victim.address]["up"] is True
    assert cache.node_for(moved) == victim.address
    assert cache.set(moved, "home again") is True
    assert raw_command(victim.address, b"get " + moved.encode()).count(b"home again") == 1


def test_a_call_that_finds_its_node_dead_is_served_by_the_next_node(
    memcached: MemcachedCluster,
) -> None:
    """The call that meets a node's death, and the probe after each retry delay, fail
    over like every other call: a session on the next node is not read as a miss."""
    cache = Cache(memcached.addresses, retry_delay=0.2, socket_timeout=SOCKET_TIMEOUT)
    victim = memcached.nodes[1]
    keys = [k for k in (f"probe:{i}" for i in range(2000)) if cache.node_for(k) == victim.address]
    key, counter = keys[0], keys[1]
    assert cache.get(key) is None  # a pooled connection to the victim
    victim.kill()
    # Its death, met by a write: stored on the next node, not refused.
    assert cache.set(key, "on the next node") is True
    assert cache.stats()["nodes"][victim.address]["up"] is False
    assert cache.set(counter, 1) is True
    for round_ in range(3):
        time.sleep(0.3)  # past the retry delay: the next call probes the dead node
        assert cache.get(key) == "on the next node", round_
        time.sleep(0.3)
        assert cache.incr(counter) == round_ + 2, round_
        time.sleep(0.3)
        assert cache.set(key, "on the next node") is True, round_
    assert cache.stats()["nodes"][victim.address]["failures"] >= 9
    cache.close()


def test_frozen_node_costs_at_most_the_socket_timeout(
    cache: Cache, memcached: MemcachedCluster
) -> None:
    victim = memcached.nodes[2]
    key = next(f"f:{i}" for i in range(1000) if cache.node_for(f"f:{i}") == victim.address)
    cache.set(key, "v")
    victim.freeze()
    try:
        started = time.monotonic()
        assert cache.get(key) is None  # a miss, not an exception
        elapsed = time.monotonic() - started
        assert elapsed < SOCKET_TIMEOUT + 0.5
        assert cache.stats()["nodes"][victim.address]["up"] is False
        started = time.monotonic()
        assert cache.get(key) is None  # down: answered by the next node at once
        assert time.monotonic() - started < SOCKET_TIMEOUT
    finally:
        victim.thaw()


def test_adding_a_node_moves_about_one_in_n(memcached: MemcachedCluster) -> None:
    keys = {f"ring:{i}": i for i in range(10_000)}
    three = Cache(memcached.addresses)
    assert three.set_multi(keys, expire=300) == []
    fourth = memcached.add_node()
    # failback_window=0: placement only (a node up for less than the window
    # is otherwise read as just back, and misses on it are looked up on the next node).
    four = Cache(memcached.addresses + [fourth.address], failback_window=0)
    found = four.get_multi(keys)
    moved = [k for k in keys if k not in found]
    assert 0.15 <= len(moved) / len(keys) <= 0.35
    assert all(found[k] == keys[k] for k in found)
    assert {four.node_for(k) for k in moved} == {fourth.address}
    three.close()
    four.close()


class _ConnectionCount:
    """memcached's ``curr_connections`` read over one connection kept open.

    A fresh connection per read would leave the previous one counted until the
    memcached thread that owns it sees its close: one stale count in a sample.
    """

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)

    def read(self) -> int:
        """The server's open connections now (this one included)."""
        self.sock.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = self.sock.recv(65536)
            assert chunk, "memcached closed the stats connection"
            data += chunk
        return int(data.split(b"STAT curr_connections ", 1)[1].split(b"\r\n", 1)[0])

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


def test_pool_is_bounded_under_1000_greenlets(memcached: MemcachedCluster) -> None:
    pool_size = 3
    counters = {a: _ConnectionCount(a) for a in memcached.addresses}
    before = {a: c.read() for a, c in counters.items()}
    cache = Cache(memcached.addresses, pool_size=pool_size, acquire_timeout=5.0)
    cache.set_multi({f"p:{i}": i for i in range(100)})
    cache.close()
    # The baseline once memcached has seen the pool's closes: the sampler's own
    # connection is in it and in every sample.
    assert wait_until(lambda: all(c.read() <= before[a] for a, c in counters.items()), 5)
    baseline = {a: c.read() for a, c in counters.items()}
    peak = dict(baseline)
    results: list[object] = []
    done = gevent.event.Event()

    def sample() -> None:
        while not done.is_set():
            for a, counter in counters.items():
                peak[a] = max(peak[a], counter.read())
            gevent.sleep(0.005)

    def worker(n: int) -> None:
        for j in range(5):
            results.append(cache.get(f"p:{(n + j) % 100}"))

    sampler = gevent.spawn(sample)
    gevent.joinall([gevent.spawn(worker, n) for n in range(1000)], timeout=30)
    done.set()
    sampler.join()
    assert len(results) == 5000
    assert results.count(None) == 0
    for counter in counters.values():
        counter.close()
    for a in memcached.addresses:
        assert 1 <= peak[a] - baseline[a] <= pool_size, (a, baseline[a], peak[a])
    stats = cache.stats()
    assert stats["in_use"] == 0
    assert all(n["open"] <= pool_size for n in stats["nodes"].values())
    cache.close()


def test_stats_and_server_stats(cache: Cache, memcached: MemcachedCluster) -> None:
    cache.set("x", 1)
    stats = cache.stats()
    assert stats["up"] == 3 and stats["down"] == 0 and stats["in_use"] == 0
    assert set(stats["nodes"]) == set(memcached.addresses)
    node = stats["nodes"][memcached.addresses[0]]
    assert {"up", "retry_in", "failures", "pool_size", "open", "in_use", "idle"} <= set(node)
    server = cache.server_stats()
    assert all(s is not None and "curr_connections" in s for s in server.values())


def test_pool_timeout_is_a_miss_not_a_down_node(memcached: MemcachedCluster) -> None:
    victim = memcached.nodes[0]
    cache = Cache(memcached.addresses, pool_size=1, socket_timeout=1.0, acquire_timeout=0.1)
    key = next(f"t:{i}" for i in range(1000) if cache.node_for(f"t:{i}") == victim.address)
    victim.freeze()
    try:
        holder = gevent.spawn(cache.get, key)  # holds the only connection for 1 s
        gevent.sleep(0.05)
        started = time.monotonic()
        assert cache.get(key, default="miss") == "miss"
        assert time.monotonic() - started < 0.5
        assert cache.stats()["nodes"][victim.address]["up"] is True  # busy is not down
        holder.join()
    finally:
        victim.thaw()
    cache.close()


def test_no_stale_read_after_failback(cache: Cache, memcached: MemcachedCluster) -> None:
    """A key cached on a fallback node during an outage is invalidated by a delete after failback."""
    victim = memcached.nodes[0]
    key = next(f"fb:{i}" for i in range(1000) if cache.node_for(f"fb:{i}") == victim.address)
    cache.set(key, "v1")
    victim.kill()
    assert cache.get(key) is None  # the failure marks the node down
    fallback = cache.node_for(key)
    assert fallback not in (None, victim.address)
    assert cache.set(key, "v1") is True  # a read-through fill lands on the fallback
    victim.restart()
    gevent.sleep(RETRY_DELAY + 0.3)
    # Back on the (restarted, empty) owner; what was written during the
    # outage is still found, on the fallback.
    assert cache.node_for(key) == victim.address
    assert cache.get(key) == "v1"
    cache.delete(key)  # the row changed: invalidate
    # The next outage sends reads to the fallback again: its old copy must be gone.
    assert b"v1" not in raw_command(fallback, b"get " + key.encode())


def test_missed_delete_is_replayed(cache: Cache, memcached: MemcachedCluster) -> None:
    """A delete that could not reach a frozen node is replayed before that node is read again."""
    victim = memcached.nodes[2]
    key = next(f"md:{i}" for i in range(1000) if cache.node_for(f"md:{i}") == victim.address)
    cache.set(key, "old")
    victim.freeze()
    try:
        cache.delete(key)  # times out on the victim: remembered
        assert cache.stats()["nodes"][victim.address]["up"] is False
    finally:
        victim.thaw()
    gevent.sleep(RETRY_DELAY + 0.3)
    assert cache.get(key) is None  # the victim answers again: the delete went first
    assert b"old" not in raw_command(victim.address, b"get " + key.encode())
