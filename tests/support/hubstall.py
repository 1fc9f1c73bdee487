"""Measure how long the gevent hub is kept from running: a 10 ms ticker greenlet."""

from __future__ import annotations

import time
from typing import Any

import gevent


class Ticker:
    """A 10 ms ticker greenlet; ``worst`` is how long the hub kept it waiting past a tick.

    Lateness counts only while this thread was on the CPU (the shared test
    machine may deschedule the whole process: that is not the hub blocking).
    """

    def __init__(self) -> None:
        self.worst = 0.0
        self.calls = 0
        self._g: Any = None

    def _run(self) -> None:
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            gevent.sleep(0.01)
            late_wall = time.perf_counter() - wall - 0.01
            late_cpu = time.thread_time() - cpu
            self.worst = max(self.worst, min(late_wall, late_cpu))
            self.calls += 1

    def __enter__(self) -> Ticker:
        self._g = gevent.spawn(self._run)
        gevent.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._g.kill()


def hub_stall(work: Any, attempts: int = 3) -> float:
    """The longest a 10 ms ticker waited past a tick while ``work()`` ran (best of runs).

    A call that blocks the hub shows in every run; a run spoiled by the shared
    machine's load is repeated (``work`` must start from a cold state each time).
    """
    best = float("inf")
    for _ in range(attempts):
        with Ticker() as late:
            work()
        best = min(best, late.worst)
        if best < 0.005:
            break
    return best
