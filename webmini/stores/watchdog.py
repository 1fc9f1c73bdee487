"""A time limit for database statements: one greenlet per pool instead of a timer per socket wait.

pymysql's ``read_timeout`` and ``write_timeout`` become socket timeouts, and
under gevent every wait on a socket with a timeout arms and cancels a timer:
measured 5-6 µs of a primary-key SELECT's ~44 µs of client CPU with 16
greenlets on a pool of 10 (benchmarks/README.md). :class:`StatementWatchdog`
bounds each statement instead: a statement notes its start in a dict, and
one greenlet per pool looks at the dict a few times per limit and aborts
(shuts the socket of) any statement past it, which the waiting greenlet then
sees as a lost connection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable
from contextlib import suppress
from typing import Any

import gevent

__all__ = ["StatementWatchdog"]


class StatementWatchdog:
    """Aborts statements that run longer than ``limit`` seconds, checked every ``limit / 8``."""

    def __init__(self, limit: float, abort: Callable[[Any], None],
                 socket_timeouts: tuple[float | None, float | None] = (None, None)) -> None:
        self.limit = limit
        #: (read, write) socket timeouts for statements sent around the watchdog
        #: (a driver connection used directly).
        self.socket_timeouts = socket_timeouts
        self.interval = min(1.0, max(0.05, limit / 8))
        self._abort = abort
        self._running: dict[Hashable, float] = {}
        self._expired: set[Hashable] = set()
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False
        self._pid = os.getpid()

    def begin(self, key: Hashable) -> None:
        """A statement on ``key`` (its connection) starts now."""
        self._running[key] = time.monotonic()
        watcher = self._greenlet
        # SECURITY: a statement is never left unbounded: a dead watcher (killed
        # with its hub, or by a bug) is replaced at the next statement.
        if watcher is None or watcher.dead:
            self._greenlet = gevent.spawn(self._watch)

    def end(self, key: Hashable) -> bool:
        """The statement on ``key`` is over; True when the watchdog had aborted it."""
        if self._running.pop(key, None) is not None:
            return False
        if key in self._expired:
            self._expired.discard(key)
            return True
        return False

    def running(self) -> int:
        """How many statements are being timed."""
        return len(self._running)

    def stop(self) -> None:
        """Let the watcher greenlet end once the statements it times are over (a statement
        begun later, on a connection checked out before, is still timed)."""
        self._stopping = True

    def _watch(self) -> None:
        while not (self._stopping and not self._running):
            gevent.sleep(self.interval)
            if os.getpid() != self._pid:
                # SECURITY: a copy of this greenlet in a forked child must not shut
                # sockets the parent still uses (shutdown reaches across processes).
                return
            if not self._running:
                continue
            too_old = time.monotonic() - self.limit
            for key, started in list(self._running.items()):
                if started <= too_old and self._running.get(key) == started:
                    del self._running[key]
                    self._expired.add(key)
                    with suppress(Exception):  # the watcher itself must never die
                        self._abort(key)
