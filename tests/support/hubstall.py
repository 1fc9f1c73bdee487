"""Measure how long the gevent hub is kept from running: a 10 ms ticker greenlet and a
trace of every greenlet switch.

Two figures, both in on-CPU time of this thread (the shared test machine may
deschedule the whole process; that is not the hub blocking):

- ``longest_slice``: the longest run of any one greenlet (or the hub) between
  two switches. A blocking call (a C library holding the thread, a CPU-heavy
  step that never yields) is one long slice: this is what "blocks the hub"
  means, whatever else runs.
- ``ticker``: how late a 10 ms ticker greenlet woke. This also adds up many
  short, cooperative slices of other greenlets that ran in the same loop turn.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import gevent
import greenlet


class Stall(NamedTuple):
    """The worst figures of one measured run, in seconds."""

    longest_slice: float
    ticker: float


class Ticker:
    """A 10 ms ticker greenlet plus a switch trace, for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.longest_slice = 0.0
        self.calls = 0
        self._g: Any = None
        self._last = 0.0
        self._previous_trace: Any = None

    def _run(self) -> None:
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            gevent.sleep(0.01)
            late_wall = time.perf_counter() - wall - 0.01
            late_cpu = time.thread_time() - cpu
            self.worst = max(self.worst, min(late_wall, late_cpu))
            self.calls += 1

    def _trace(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            now = time.thread_time()
            self.longest_slice = max(self.longest_slice, now - self._last)
            self._last = now
        if self._previous_trace is not None:
            self._previous_trace(event, args)

    def __enter__(self) -> Ticker:
        self._g = gevent.spawn(self._run)
        gevent.sleep(0.02)
        self._last = time.thread_time()
        self._previous_trace = greenlet.settrace(self._trace)
        return self

    def __exit__(self, *exc: Any) -> None:
        greenlet.settrace(self._previous_trace)
        self._g.kill()


def hub_stall(work: Any, attempts: int = 3, limit: float = 0.005) -> Stall:
    """The worst stalls while ``work()`` ran: the run with the shortest longest slice.

    A call that blocks the hub shows in every run; a run spoiled by the shared
    machine's load is repeated (``work`` must start from a cold state each time).
    """
    best = Stall(float("inf"), float("inf"))
    for _ in range(attempts):
        with Ticker() as late:
            work()
        if late.longest_slice < best.longest_slice:
            best = Stall(late.longest_slice, late.worst)
        if best.longest_slice < limit:
            break
    return best
