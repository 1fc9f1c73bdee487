"""A bounded producer/consumer queue for background work inside a gevent worker.

``WorkQueue(maxsize, workers=N, handler=fn)`` runs ``fn(item)`` for every
item put, in ``N`` consumer greenlets. The queue holds at most ``maxsize``
items, so memory stays bounded however fast requests produce work: a
producer either waits for room (``put(item)``), waits up to ``timeout``, or
gets ``QueueFull`` at once (``put_nowait``, ``put(item, block=False)``) and
can answer 503. A handler that raises is logged (``webmini.realtime.workqueue``
logger) and counted; its consumer carries on with the next item.

Consumers start on the first ``put``, in the process that puts: a queue
created in a uWSGI master before the fork starts its own consumers in each
worker, and items never cross processes.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webmini._extras import require

with require("gevent", "webmini.realtime.workqueue"):
    import gevent
    from gevent.queue import JoinableQueue

__all__ = ["QueueClosed", "QueueFull", "WorkQueue", "WorkQueueStats"]

log = logging.getLogger(__name__)


class QueueFull(queue.Full):
    """The work queue is full and the producer chose not to wait (or its timeout ran out)."""


class QueueClosed(RuntimeError):
    """The work queue was closed; it accepts no more items."""


@dataclass(frozen=True)
class WorkQueueStats:
    """A snapshot of a work queue's counters."""

    name: str
    maxsize: int
    workers: int
    queued: int
    busy: int
    submitted: int
    processed: int
    failed: int
    rejected: int
    peak_queued: int


class WorkQueue:
    """Bounded queue drained by ``workers`` greenlets that call ``handler(item)``."""

    def __init__(
        self,
        maxsize: int,
        workers: int = 1,
        handler: Callable[[Any], Any] | None = None,
        *,
        name: str = "workqueue",
    ) -> None:
        """Make a queue of at most ``maxsize`` items, served by ``workers`` consumers."""
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1: a work queue is always bounded")
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if handler is None:
            raise TypeError("handler is required: the function called with each item")
        self.maxsize = maxsize
        self.workers = workers
        self.handler = handler
        self.name = name
        self._queue: JoinableQueue = JoinableQueue(maxsize)
        self._greenlets: list[gevent.Greenlet] = []
        self._pid = 0
        self._closed = False
        self._busy = 0
        self._submitted = 0
        self._processed = 0
        self._failed = 0
        self._rejected = 0
        self._peak = 0

    def __repr__(self) -> str:
        """Show the name, fill level and bound."""
        return f"<WorkQueue {self.name!r} {self._queue.qsize()}/{self.maxsize}>"

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Queue ``item``; if full, wait (``block``, up to ``timeout``) or raise ``QueueFull``."""
        if self._closed:
            raise QueueClosed(f"work queue {self.name!r} is closed")
        if self._pid != os.getpid():
            self._start()
        try:
            self._queue.put(item, block, timeout)
        except queue.Full:
            self._rejected += 1
            waited = f" after waiting {timeout:g} s" if block and timeout else ""
            raise QueueFull(
                f"work queue {self.name!r} is full ({self.maxsize} items){waited}"
            ) from None
        if self._closed:
            # Closed while this producer waited for room: nobody will handle it.
            raise QueueClosed(f"work queue {self.name!r} was closed while waiting")
        self._submitted += 1
        # PERF: qsize() is len(deque); cheaper than a separate counter update path.
        size = self._queue.qsize()
        if size > self._peak:
            self._peak = size

    def put_nowait(self, item: Any) -> None:
        """Queue ``item`` or raise ``QueueFull`` at once."""
        self.put(item, block=False)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item put so far has been handled; False if ``timeout`` ran out."""
        return bool(self._queue.join(timeout))

    def close(self, wait: bool = True, timeout: float | None = None) -> bool:
        """Refuse new items; handle the queued ones first if ``wait``; stop the consumers.

        Returns True when every queued item was handled, False when items
        were dropped (``wait=False``, or ``timeout`` ran out first).
        """
        self._closed = True
        mine = self._pid == os.getpid()
        drained = self.join(timeout) if wait and mine else False
        idle = self._queue.qsize() == 0 and self._busy == 0
        if mine:
            gevent.killall(self._greenlets)
        self._greenlets = []
        while self._queue.qsize():
            self._queue.get_nowait()
            self._queue.task_done()
        return drained or idle

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    def qsize(self) -> int:
        """Items waiting (not counting those being handled)."""
        return int(self._queue.qsize())

    def stats(self) -> WorkQueueStats:
        """Return a snapshot of the counters."""
        return WorkQueueStats(
            name=self.name,
            maxsize=self.maxsize,
            workers=len(self._greenlets),
            queued=self._queue.qsize(),
            busy=self._busy,
            submitted=self._submitted,
            processed=self._processed,
            failed=self._failed,
            rejected=self._rejected,
            peak_queued=self._peak,
        )

    def _start(self) -> None:
        """Start consumers in this process (first put, or first put after a fork)."""
        if self._pid:
            # Inherited across fork: items and consumers belong to the parent.
            self._queue = JoinableQueue(self.maxsize)
            self._busy = 0
        self._pid = os.getpid()
        self._greenlets = [
            gevent.spawn(self._consume) for _ in range(self.workers)
        ]

    def _consume(self) -> None:
        """Consumer loop: take an item, handle it, log failures, repeat until killed."""
        q = self._queue
        handler = self.handler
        while True:
            item = q.get()
            self._busy += 1
            try:
                handler(item)
                self._processed += 1
            except (Exception, gevent.Timeout):
                # A failing item must not kill the consumer: log it and go on.
                self._failed += 1
                log.exception("work queue %r: handler failed for %.200r", self.name, item)
            finally:
                self._busy -= 1
                del item
                q.task_done()
