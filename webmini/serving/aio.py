"""``async def`` handlers: one asyncio event loop per worker process, driven by the gevent hub.

A handler method (``async def GET``), a callable target or an async
generator may be a coroutine function. webmini runs it on the worker's one
asyncio loop and the request's greenlet waits for its result, so everything
else about the request stays as in a sync handler: ``web.ctx``,
``web.input()``, ``web.header()``, raised errors, redirects, sessions,
JSON and streamed results, the handler ``timeout``.

How the loop lives with gevent:

* the loop is an ``asyncio.SelectorEventLoop`` running ``run_forever()`` in
  a greenlet of its own; its selector waits through the gevent hub (libev io
  watchers) and its timers are libev timers, so while coroutines wait every
  greenlet runs, and the reverse; while coroutines keep it busy, the hub
  still gets a turn every :data:`BUSY_SLICE` seconds. It is started on the
  first coroutine and forgotten in a forked child (``os.register_at_fork``),
  which starts its own;
* a request greenlet creates the task itself (the loop's thread: no
  self-pipe), with a copy of its ``contextvars`` context (``web.ctx`` is a
  ContextVar), wakes the selector and waits in the hub; the task's outcome
  comes back through one hub callback, exceptions included;
* anything that ends the wait early (the handler ``timeout``'s
  ``gevent.Timeout``, the greenlet being killed) cancels the task and waits
  for it to unwind (its ``finally`` blocks run) before the request goes on;
  a client that closes its connection is noticed by a sweep every
  :data:`SWEEP_INTERVAL` seconds, which cancels the task (the request then
  ends as a 499 nobody reads). No task outlives its request.

A sync gevent-friendly call made inside a coroutine (the MySQL pool,
memcached, ``requests``) works: it blocks the loop's greenlet, which under
gevent yields to the hub, so sync requests go on, but every other coroutine
of the worker waits until it returns. Keep such calls short, or make them
from a sync handler.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import selectors
import socket as _stdlib_socket
from asyncio import events
from collections.abc import AsyncIterator, Callable, Iterator
from inspect import isasyncgenfunction
from selectors import EVENT_READ, EVENT_WRITE
from time import monotonic as _monotonic
from typing import Any

from webmini._extras import require
from webmini.ctx import RequestContext, current_or_none
from webmini.errors import HTTPError

with require("gevent", "async handlers (webmini.serving.aio)"):
    import gevent
    from gevent.hub import Waiter

__all__ = ["ClientGone", "get_loop", "run", "sync_handler", "tasks"]

log = logging.getLogger(__name__)

#: How long a cancelled coroutine gets to run its ``finally`` blocks before
#: the request goes on without it (it is then logged, and left to finish).
CANCEL_GRACE = 5.0

#: While coroutines keep the loop busy, the hub (every other greenlet, and
#: I/O) gets a turn at least this often, in seconds.
BUSY_SLICE = 0.002

#: Seconds between looks at the connections of requests whose coroutine runs:
#: a client that left is noticed within two of them, and its task cancelled.
SWEEP_INTERVAL = 1.0

# The C socket type: a peek at a descriptor the server owns, never a gevent wait.
_RawSocket: Any = getattr(_stdlib_socket, "_socket").socket  # noqa: B009
_PEEK = _stdlib_socket.MSG_PEEK | _stdlib_socket.MSG_DONTWAIT


class ClientGone(HTTPError):
    """The client closed its connection while an ``async def`` handler ran (a 4xx: not logged)."""

    def __init__(self) -> None:
        super().__init__("499 Client Closed Request", None, "client closed the connection")


class _HubSelector(selectors._BaseSelectorImpl):
    """A selector that waits through the gevent hub: io watchers, a timer, a wake-up call.

    While the loop waits here its greenlet is parked in the hub, so every
    other greenlet runs; greenlets of this thread hand it work with
    :meth:`wake` (no self-pipe write and read). While it waits, no loop is
    "running" for the thread: the running loop is per thread, not per
    greenlet, and a sync greenlet calling ``asyncio.run()`` must not see it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.hub = gevent.get_hub()
        self._io: dict[int, Any] = {}  # fd -> io watcher
        self._fired: list[int] = []  # watchers stopped once they fired, until the next select
        self._events: dict[int, int] = {}  # fd -> EVENT_READ|EVENT_WRITE seen since then
        self._waiting: Any = None  # the loop's greenlet while it waits
        self._woken = False
        self._busy_until = 0.0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        """Register ``fileobj`` and start an io watcher for it."""
        key = super().register(fileobj, events, data)
        flags = (1 if events & EVENT_READ else 0) | (2 if events & EVENT_WRITE else 0)
        try:
            watcher = self.hub.loop.io(key.fd, flags)
        except OSError as exc:
            super().unregister(fileobj)
            raise ValueError(f"invalid file descriptor {key.fd}") from exc
        watcher.start(self._ready, key.fd, pass_events=True)
        self._io[key.fd] = watcher
        return key

    def watcher(self, fd: int) -> Any:
        """The io watcher of ``fd``, or None."""
        return self._io.get(fd)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        """Unregister ``fileobj`` and close its watcher."""
        key = super().unregister(fileobj)
        watcher = self._io.pop(key.fd, None)
        if watcher is not None:
            watcher.stop()
            watcher.close()
        self._events.pop(key.fd, None)
        return key

    def _ready(self, events: int, fd: int) -> None:
        # In the hub. A watcher that fired stays stopped until the next
        # select(): a descriptor the loop does not read yet (its greenlet
        # busy in a sync call) must not wake the hub over and over.
        watcher = self._io.get(fd)
        if watcher is not None:
            watcher.stop()
            self._fired.append(fd)
        mask = (EVENT_READ if events & 1 else 0) | (EVENT_WRITE if events & 2 else 0)
        self._events[fd] = self._events.get(fd, 0) | mask
        self._resume()

    def _resume(self) -> None:
        # In the hub (an io watcher, the timer, a callback).
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            # PERF: one callback, after the other watchers of this hub
            # iteration: every timer and descriptor ready now is handled by
            # one loop iteration.
            self.hub.loop.run_callback(waiting.switch)

    def ready_callbacks(self) -> None:
        """From the hub: callbacks were made ready, the loop must not wait."""
        self._woken = True
        self._resume()

    def wake(self) -> None:
        """Make the loop run its ready callbacks soon (call from a greenlet of this thread)."""
        self._woken = True
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            self.hub.loop.run_callback(waiting.switch)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait in the hub for I/O, ``timeout`` or :meth:`wake`; always yield to the hub once."""
        for fd in self._fired:
            watcher = self._io.get(fd)
            if watcher is not None:
                watcher.start(self._ready, fd, pass_events=True)
        self._fired.clear()
        loop = self.hub.loop
        timer = None
        if self._woken or self._events or (timeout is not None and timeout <= 0):
            now = _monotonic()
            if now < self._busy_until:
                # PERF: work is ready and the hub had a turn less than
                # BUSY_SLICE ago: go on without a hub iteration (an epoll
                # call and two switches) per loop iteration.
                self._woken = False
                return self._collect()
            self._busy_until = now + BUSY_SLICE
            loop.run_callback(self._resume)  # a turn of the hub, then on
        elif timeout is not None:
            timer = loop.timer(timeout)
            timer.start(self._resume)
        self._waiting = gevent.getcurrent()
        events._set_running_loop(None)
        try:
            self.hub.switch()
        finally:
            events._set_running_loop(self.loop)
            self._waiting = None
            if timer is not None:
                timer.stop()
                timer.close()
        self._woken = False
        self._busy_until = _monotonic() + BUSY_SLICE
        return self._collect()

    def _collect(self) -> list[tuple[selectors.SelectorKey, int]]:
        if not self._events:
            return []
        ready = []
        keys: dict[int, selectors.SelectorKey] = self._fd_to_key  # type: ignore[attr-defined]
        for fd, mask in self._events.items():
            key = keys.get(fd)
            if key is not None:
                ready.append((key, mask & key.events))
        self._events.clear()
        return ready

    def close(self) -> None:
        """Close every watcher, then the selector."""
        _close_watchers(self._io)
        super().close()


def _close_watchers(watchers: dict[int, Any]) -> None:
    """Stop and close every libev watcher of ``watchers``, then empty it."""
    for watcher in watchers.values():
        watcher.stop()
        watcher.close()
    watchers.clear()


_DRAIN = 64


class _HubLoop(asyncio.SelectorEventLoop):
    """The worker's asyncio loop: its timers are libev timers of the hub.

    PERF: ``call_at`` starts a libev timer (C) instead of pushing a Python
    ``TimerHandle`` on asyncio's heap (about ten Python comparisons per push
    and pop at a thousand waits), and an iteration is the short form of
    ``_run_once`` (no heap to look at). In debug mode the loop is stock.
    """

    def __init__(self, selector: _HubSelector) -> None:
        super().__init__(selector)
        self._hub_selector = selector
        self._timers: dict[int, Any] = {}  # id(TimerHandle) -> libev timer

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        """Schedule ``callback(*args)`` at loop time ``when`` (on a libev timer)."""
        loop: Any = self
        if loop._debug:
            return super().call_at(when, callback, *args, context=context)
        loop._check_closed()
        handle: Any = events.TimerHandle(when, callback, args, self, context)
        hub_loop = self._hub_selector.hub.loop
        # libev counts from the time its iteration began: brought up to date
        # first, so that a timer never fires before ``when``.
        hub_loop.update_now()
        watcher = hub_loop.timer(max(0.0, when - self.time()))
        self._timers[id(handle)] = watcher
        handle._scheduled = True
        watcher.start(self._timer_fired, handle)
        return handle

    def _timer_fired(self, handle: Any) -> None:
        # In the hub.
        self._timers.pop(id(handle), None)
        handle._scheduled = False
        if not handle._cancelled:
            self._ready.append(handle)  # type: ignore[attr-defined]  # asyncio's queue
            self._hub_selector.ready_callbacks()

    def _timer_handle_cancelled(self, handle: Any) -> None:
        watcher = self._timers.pop(id(handle), None)
        if watcher is not None:
            watcher.stop()
            watcher.close()
            handle._scheduled = False
        else:
            super()._timer_handle_cancelled(handle)  # type: ignore[misc]

    def _run_once(self) -> None:
        loop: Any = self  # asyncio's private state, read as BaseEventLoop._run_once does
        if loop._debug or loop._scheduled:
            super()._run_once()  # type: ignore[misc]
            return
        ready = loop._ready
        loop._process_events(loop._selector.select(0 if ready or loop._stopping else None))
        # PERF: what these callbacks make ready (a future's done callbacks, a
        # task's next step) runs in this iteration too, up to a bound: one
        # iteration, not three, from a timer to the coroutine's next step.
        # Fairness: after BUSY_SLICE of callbacks the rest waits for the next
        # iteration, which gives the hub a turn first: a batch of coroutines
        # never keeps sync requests (and I/O) waiting longer than that.
        budget = len(ready) + _DRAIN
        deadline = _monotonic() + BUSY_SLICE
        while ready and budget:
            budget -= 1
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()
            if _monotonic() > deadline:
                break

    def close(self) -> None:
        """Stop the pending timers, then close the loop."""
        _close_watchers(self._timers)
        super().close()


class _Worker:
    """The worker process's loop, its greenlet and its selector."""

    __slots__ = ("loop", "selector", "greenlet", "hub", "pid", "inflight", "sweeper")

    def __init__(self) -> None:
        self.selector = _HubSelector()
        self.loop = _HubLoop(self.selector)
        # asyncio's debug mode checks call_soon's thread with threading.get_ident(),
        # a greenlet id once gevent patched: every request greenlet would fail it.
        self.loop.set_debug(False)
        # asyncio's self-pipe (woken by other threads) must not keep the hub
        # running on its own: gevent.wait() and a hub with nothing else to do end.
        pipe = self.selector.watcher(getattr(self.loop, "_ssock").fileno())  # noqa: B009
        if pipe is not None:
            pipe.ref = False
        self.selector.loop = self.loop
        self.pid = os.getpid()
        self.hub = gevent.get_hub()
        self.greenlet = gevent.spawn(self._run)
        self.inflight: dict[Any, _Pending] = {}
        self.sweeper = self.hub.loop.timer(SWEEP_INTERVAL, SWEEP_INTERVAL)
        self.sweeper.ref = False  # never keeps a process alive
        self.sweeper.start(_sweep, self.inflight)

    def _run(self) -> None:
        try:
            self.loop.run_forever()
        except BaseException:  # the worker is going down (GreenletExit) or a bug
            log.exception("the asyncio loop of worker %d stopped", self.pid)
            raise


_worker: _Worker | None = None


def _forget_after_fork() -> None:
    # A forked child has the parent's loop object but not its greenlet or
    # hub: it starts a loop of its own on its first coroutine.
    global _worker
    _worker = None


os.register_at_fork(after_in_child=_forget_after_fork)


def _get() -> _Worker:
    global _worker
    w = _worker
    if w is None:
        w = _worker = _Worker()
    return w


def get_loop() -> asyncio.AbstractEventLoop:
    """Return this worker's asyncio loop, started on first use."""
    return _get().loop


def tasks() -> set[asyncio.Task[Any]]:
    """Return the tasks not yet done on this worker's loop (empty when none was started)."""
    w = _worker
    if w is None:
        return set()
    return {t for t in asyncio.all_tasks(w.loop) if not t.done()}


def _client_fd(env: dict[str, Any]) -> int | None:
    """The client connection's descriptor under the three servers, or None."""
    try:
        sock = env.get("gunicorn.socket")
        if sock is None:
            sock = getattr(env.get("webmini.pywsgi_handler"), "socket", None)
        if sock is None and "uwsgi.version" in env:
            sock = env["wsgi.input"]  # uWSGI's input knows its request's descriptor
        return int(sock.fileno()) if sock is not None else None
    except Exception:  # a server without it, a socket closed already: not watched
        return None


def _client_left(fd: int) -> bool:
    """True when the client closed its end (end of file, nothing left unread)."""
    sock = _RawSocket(fileno=fd)
    try:
        return sock.recv(1, _PEEK) == b""
    except BlockingIOError:
        return False  # connected, nothing sent
    except OSError:
        return True
    finally:
        sock.detach()


class _Pending:
    """A coroutine a request's greenlet waits for: its task, how to report and cancel it."""

    __slots__ = ("worker", "waiter", "task", "env", "seen", "gone")

    def __init__(self, worker: _Worker, env: dict[str, Any] | None) -> None:
        self.worker = worker
        self.waiter = Waiter(worker.hub)
        self.task: asyncio.Task[None] | None = None
        self.env, self.seen, self.gone = env, False, False

    def report(self, ok: bool, value: Any) -> None:
        """Hand the outcome to the waiting greenlet (one hub callback)."""
        self.worker.hub.loop.run_callback(self.waiter.switch, (ok, value))

    def cancel(self) -> None:
        """Cancel the task; its outcome is reported even if it never started."""
        task = self.task
        if task is not None:
            task.add_done_callback(self._cancelled)
            task.cancel()
            self.worker.selector.wake()

    def _cancelled(self, _: Any) -> None:
        self.report(False, asyncio.CancelledError())


def _sweep(inflight: dict[Any, _Pending]) -> None:
    # In the hub, every SWEEP_INTERVAL: a request seen by the previous sweep
    # too (so older than one interval) has its connection looked at.
    # PERF: nothing per request but a dict entry; no watcher, no timer.
    for entry in list(inflight.values()):
        if entry.gone or entry.env is None:
            continue
        if not entry.seen:
            entry.seen = True
            continue
        fd = _client_fd(entry.env)
        if fd is not None and _client_left(fd):
            entry.gone = True
            entry.cancel()


async def _call(func: Callable[..., Any], args: tuple[Any, ...], c: RequestContext | None,
                pending: _Pending) -> None:
    # The task's outermost coroutine. ``c`` stays a local of this frame: the
    # hub monitor (webmini.serving.green) reads it to name the request whose
    # handler holds the loop.
    try:
        result = await func(*args)
    except BaseException as exc:  # CancelledError too: reported, not re-raised
        pending.report(False, exc)
    else:
        pending.report(True, result)


def _wait(func: Callable[..., Any], args: tuple[Any, ...], c: RequestContext | None,
          env: dict[str, Any] | None = None) -> Any:
    """Run ``await func(*args)`` as a task on the worker loop; wait in this greenlet for it."""
    w = _worker or _get()
    if gevent.getcurrent() is w.greenlet:
        if func is _await and asyncio.iscoroutine(args[0]):
            args[0].close()  # never awaited: closed, without the warning
        raise RuntimeError("webmini.serving.aio: called from a coroutine on the worker loop: "
                           "await the coroutine instead")
    pending = _Pending(w, env)
    # PERF: the task is made here, in the loop's thread (call_soon, no
    # self-pipe), the selector woken by a flag and a hub callback, and the
    # outcome comes back through one hub callback switching to this greenlet
    # (no done-callback round, no AsyncResult, no Event).
    task = pending.task = asyncio.Task(_call(func, args, c, pending), loop=w.loop,
                                       context=contextvars.copy_context())
    w.selector.wake()
    inflight = w.inflight
    inflight[task] = pending
    try:
        ok, value = pending.waiter.get()
    except BaseException:
        # A timeout, a kill: the task is cancelled and unwinds (its finally
        # blocks run) before the request goes on.
        pending.cancel()
        if gevent.with_timeout(CANCEL_GRACE, pending.waiter.get, timeout_value=None) is None:
            log.error("a cancelled coroutine was still running after %g s: %r",
                      CANCEL_GRACE, task)
        raise
    finally:
        del inflight[task]
    if ok:
        return value
    if isinstance(value, asyncio.CancelledError):
        if pending.gone:
            raise ClientGone() from None
        raise RuntimeError("the coroutine was cancelled") from value
    raise value


def run(awaitable: Any) -> Any:
    """Run a coroutine on this worker's loop from sync code (a greenlet); return its result.

    The caller's context (``web.ctx``...) is copied into the task. Raises
    RuntimeError when called from a coroutine on that loop: await it there.
    """
    return _wait(_await, (awaitable,), current_or_none())


async def _await(awaitable: Any) -> Any:
    return await awaitable


_END: Any = object()
_PLAIN_RESULTS = frozenset({str, bytes, dict, list, type(None)})


async def _next(iterator: AsyncIterator[Any]) -> Any:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END


class AsyncStream:
    """A streamed body from an async iterator: each chunk is awaited on the worker loop."""

    def __init__(self, iterator: Any) -> None:
        self.iterator = iterator if hasattr(iterator, "__anext__") else iterator.__aiter__()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        chunk = _wait(_next, (self.iterator,), current_or_none())
        if chunk is _END:
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Close the async generator on the loop (its ``finally`` blocks run)."""
        aclose = getattr(self.iterator, "aclose", None)
        if aclose is not None:
            _wait(aclose, (), current_or_none())


def _as_body(result: Any) -> Any:
    if type(result) in _PLAIN_RESULTS:  # PERF: the common results, without two hasattr
        return result
    if hasattr(result, "__aiter__") and not hasattr(result, "__iter__"):
        return AsyncStream(result)
    return result


def sync_handler(func: Callable[..., Any]) -> Callable[..., Any]:
    """Return a sync stand-in for an ``async def`` handler or an async generator function."""
    if isasyncgenfunction(func):
        @functools.wraps(func)
        def stream(*args: Any) -> Any:
            return AsyncStream(func(*args))

        return stream

    @functools.wraps(func)
    def call(*args: Any) -> Any:
        c = current_or_none()
        return _as_body(_wait(func, args, c, c.env if c is not None else None))

    return call
