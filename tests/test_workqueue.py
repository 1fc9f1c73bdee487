"""Bounded work queue: backpressure, clear errors, failing handlers, flat memory."""

from __future__ import annotations

import gc
import logging
import os
import time

import gevent
import pytest
from gevent.event import Event
from gevent.queue import Queue

from webmini.realtime.workqueue import QueueClosed, QueueFull, WorkQueue


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_items_are_handled_and_counted():
    seen = []
    wq = WorkQueue(10, workers=3, handler=seen.append, name="t")
    for i in range(100):
        wq.put(i)
    assert wq.join(timeout=5)
    assert sorted(seen) == list(range(100))
    s = wq.stats()
    assert (s.submitted, s.processed, s.failed, s.rejected) == (100, 100, 0, 0)
    assert s.workers == 3 and s.maxsize == 10 and s.queued == 0 and s.busy == 0
    assert 1 <= s.peak_queued <= 10
    assert wq.close()


def test_full_queue_raises_clear_error_without_blocking():
    release = Event()
    wq = WorkQueue(2, workers=1, handler=lambda item: release.wait(), name="mail")
    wq.put(1)
    gevent.sleep(0)  # the consumer takes item 1 and waits
    wq.put(2)
    wq.put(3)
    assert wq.qsize() == 2
    with pytest.raises(QueueFull, match=r"work queue 'mail' is full \(2 items\)"):
        wq.put_nowait(4)
    with pytest.raises(QueueFull):
        wq.put(4, block=False)
    t0 = time.monotonic()
    with pytest.raises(QueueFull, match="after waiting 0.05 s"):
        wq.put(4, timeout=0.05)
    assert time.monotonic() - t0 >= 0.04
    assert wq.stats().rejected == 3
    release.set()
    assert wq.join(timeout=5)
    assert wq.stats().processed == 3
    wq.close()


def test_blocking_put_waits_for_room():
    release = Event()
    done = []
    wq = WorkQueue(1, workers=1, handler=lambda item: (release.wait(), done.append(item)))
    wq.put("a")
    gevent.sleep(0)
    wq.put("b")
    producer = gevent.spawn(wq.put, "c")  # queue full: this producer waits
    gevent.sleep(0.05)
    assert not producer.ready()
    release.set()
    producer.join(timeout=5)
    assert producer.successful()
    assert wq.join(timeout=5)
    assert done == ["a", "b", "c"]
    wq.close()


def test_handler_exception_is_logged_and_consumer_survives(caplog):
    handled = []

    def handler(item):
        if item % 3 == 0:
            raise ValueError(f"bad item {item}")
        handled.append(item)

    wq = WorkQueue(5, workers=1, handler=handler, name="jobs")
    consumer = None
    with caplog.at_level(logging.ERROR, logger="webmini.realtime.workqueue"):
        for i in range(1, 10):
            wq.put(i)
            consumer = consumer or wq._greenlets[0]
        assert wq.join(timeout=5)
    assert handled == [1, 2, 4, 5, 7, 8]
    assert wq.stats().failed == 3 and wq.stats().processed == 6
    assert not consumer.dead and wq._greenlets == [consumer]  # the same consumer carried on
    errors = [r for r in caplog.records if r.name == "webmini.realtime.workqueue"]
    assert len(errors) == 3
    assert "handler failed" in errors[0].getMessage() and "'jobs'" in errors[0].getMessage()
    assert errors[0].exc_info[0] is ValueError
    wq.close()


def test_handler_timeout_does_not_kill_consumer():
    def handler(item):
        with gevent.Timeout(0.01):
            gevent.sleep(1)

    wq = WorkQueue(2, workers=1, handler=handler)
    wq.put(1)
    wq.put(2)
    assert wq.join(timeout=5)
    assert wq.stats().failed == 2
    assert not wq._greenlets[0].dead
    wq.close()


def test_workers_run_concurrently():
    wq = WorkQueue(20, workers=10, handler=lambda item: gevent.sleep(0.2))
    t0 = time.monotonic()
    for i in range(10):
        wq.put(i)
    assert wq.join(timeout=5)
    # 10 x 0.2 s on 10 consumers: one round, not ten.
    assert time.monotonic() - t0 < 1.0
    wq.close()


def test_close_drains_then_refuses():
    seen = []
    wq = WorkQueue(50, workers=2, handler=lambda item: (gevent.sleep(0.001), seen.append(item)))
    for i in range(20):
        wq.put(i)
    assert wq.close(wait=True, timeout=5) is True
    assert sorted(seen) == list(range(20))
    assert wq.closed and wq.stats().workers == 0
    with pytest.raises(QueueClosed):
        wq.put(99)


def test_close_without_wait_drops_pending_items():
    seen = []
    wq = WorkQueue(50, workers=1, handler=lambda item: (gevent.sleep(0.05), seen.append(item)))
    for i in range(10):
        wq.put(i)
    gevent.sleep(0)
    assert wq.close(wait=False) is False
    gevent.sleep(0.1)
    assert seen == []  # the one in progress was stopped, the rest dropped
    assert wq.qsize() == 0


def test_producer_blocked_when_closed_gets_queue_closed():
    release = Event()
    wq = WorkQueue(1, workers=1, handler=lambda item: release.wait())
    wq.put(1)
    gevent.sleep(0)
    wq.put(2)
    producer = gevent.spawn(wq.put, 3)
    gevent.sleep(0.01)
    wq.close(wait=False)
    producer.join(timeout=5)
    assert isinstance(producer.exception, QueueClosed)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="bounded"):
        WorkQueue(0, handler=print)
    with pytest.raises(ValueError):
        WorkQueue(1, workers=0, handler=print)
    with pytest.raises(TypeError):
        WorkQueue(1)


def test_consumers_start_per_process_after_fork():
    seen = []
    wq = WorkQueue(10, workers=2, handler=lambda item: seen.append((os.getpid(), item)))
    wq.put("parent")
    assert wq.join(timeout=5)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            seen.clear()
            wq.put("child")
            ok = wq.join(timeout=5)
            me = os.getpid()
            code = 0 if ok and seen == [(me, "child")] and all(
                not g.dead for g in wq._greenlets) else 2
        finally:
            os.write(w, bytes([code]))
            os._exit(0)
    os.close(w)
    result = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert result == b"\x00"
    assert seen == [(os.getpid(), "parent")]
    wq.close()


@pytest.mark.slow
def test_memory_stays_flat_with_a_million_items_and_slow_consumers():
    """1e6 items through a 1000-item queue: RSS flat; the same flood unbounded grows >100 MB."""
    wq = WorkQueue(1000, workers=8, handler=lambda item: gevent.sleep(0), name="flood")
    for i in range(20_000):  # warm up allocator and greenlets
        wq.put((i, bytes(100)))
    assert wq.join(timeout=30)
    gc.collect()
    before = rss_bytes()
    for i in range(1_000_000):
        wq.put((i, bytes(100)))  # blocks whenever the 1000-item queue is full
    assert wq.join(timeout=60)
    bounded_growth = rss_bytes() - before
    s = wq.stats()
    assert s.processed == 1_020_000 and s.failed == 0
    assert s.peak_queued == 1000  # producers really were held back
    wq.close()
    assert bounded_growth < 20 * 2**20, f"bounded queue grew RSS by {bounded_growth / 2**20:.1f} MB"

    # Contrast: the same producer against an unbounded gevent queue never waits,
    # so every item is resident before any consumer runs.
    q: Queue = Queue()
    before = rss_bytes()
    for i in range(1_000_000):
        q.put((i, bytes(100)))
    unbounded_growth = rss_bytes() - before
    del q
    gc.collect()
    assert unbounded_growth > 100 * 2**20, f"unbounded grew only {unbounded_growth / 2**20:.1f} MB"
    assert unbounded_growth > 10 * max(bounded_growth, 2**20)
