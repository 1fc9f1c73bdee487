"""Run CPU-bound or blocking work off the gevent hub: bounded thread and process pools.

Under gevent every request of a worker shares one OS thread. A handler that
computes for a second in pure Python holds that thread (and the GIL) for a
second, and every other request of the worker waits. ``offload`` hands such
work to a bounded pool and suspends only the calling greenlet, so the hub
keeps serving:

* ``kind="process"`` (default): pure-Python CPU work. A
  ``concurrent.futures.ProcessPoolExecutor`` whose workers are started with
  ``spawn`` (or ``forkserver``), never ``fork``: forking a gevent-patched,
  multi-threaded worker would copy its hub, its event loop, the greenlets of
  requests in flight, sockets shared with the parent (database and cache
  connections) and locks held by other threads, into a child that must then
  run ordinary blocking code. A spawned worker is a fresh, unpatched
  interpreter that gets only the pickled function and arguments. The
  function must be importable by name (module level, not a lambda), and
  its arguments and result picklable. A worker re-imports the main script
  of a program started as ``python app.py``, so such a script must guard
  its start-up with ``if __name__ == "__main__":`` (under uWSGI there is no
  main script to re-import).
  The caller waits on the future without blocking the hub: the future's
  done-callback (run by the executor's management thread, a real thread or,
  once patched, a greenlet) schedules an ``Event.set`` on the hub with
  ``loop.run_callback_threadsafe``. No thread is parked per waiting call,
  unlike wrapping ``future.result`` in a thread pool.
* ``kind="thread"``: work that releases the GIL (hashing, compression, C
  libraries, blocking C drivers). A dedicated ``gevent.threadpool.ThreadPool``
  of real OS threads; gevent's hub pool is left to the DNS resolver. The
  caller's ``contextvars`` (``web.ctx``) are visible inside the thread.

Pools are created lazily and belong to the process that created them: a
pool made before a fork (e.g. in a uWSGI master without ``lazy-apps``) is
dropped and a new one made in the child (``os.getpid()`` is checked). Every
call is bounded: at most ``max_pending`` calls per pool wait or run; further
callers wait (backpressure) within their ``timeout``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, TypeVar

from webmini._extras import require

with require("gevent", "webmini.realtime.offload"):
    import gevent
    from gevent.event import Event
    from gevent.lock import BoundedSemaphore
    from gevent.threadpool import ThreadPool

__all__ = [
    "OffloadTimeout",
    "configure",
    "offload",
    "offload_process",
    "offload_thread",
    "shutdown",
    "stats",
]

T = TypeVar("T")
Kind = Literal["process", "thread"]

log = logging.getLogger(__name__)

_CPUS = os.cpu_count() or 1


class OffloadTimeout(TimeoutError):
    """Offloaded work did not finish (or start) within its ``timeout``."""


class _Settings:
    """Pool sizes and start method; read when a pool is (re)created."""

    def __init__(self) -> None:
        self.processes = _CPUS
        self.threads = min(32, _CPUS + 4)
        self.start_method = "spawn"
        self.max_pending: int | None = None  # None: 4 x pool size
        self.executable: str | None = None  # None: sys.executable, or python beside it

    def pending_limit(self, size: int) -> int:
        """Most calls allowed to wait or run at once for a pool of ``size``."""
        return self.max_pending if self.max_pending is not None else 4 * size


_settings = _Settings()


class _Bounded:
    """A pool's size, the semaphore bounding its queue and its counters, owned by one pid."""

    def __init__(self, size: int) -> None:
        self.pid = os.getpid()
        self.size = size
        self.slots = BoundedSemaphore(_settings.pending_limit(size))
        self.calls = 0
        self.running = 0


class _ProcessPool(_Bounded):
    """A process executor, bounded."""

    def __init__(self) -> None:
        super().__init__(_settings.processes)
        self.executor = _new_executor(self.size)


def _python_executable() -> str:
    """The Python interpreter that worker processes run.

    Under uWSGI ``sys.executable`` is the uwsgi binary, which cannot run a
    spawned worker: use the environment's python instead.
    """
    exe = sys.executable
    if exe and "python" in os.path.basename(exe).lower():
        return exe
    bindir = os.path.join(sys.prefix, "bin")
    candidates = [os.path.join(bindir, "python3"), os.path.join(bindir, "python"),
                  getattr(sys, "_base_executable", "")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return exe


def _new_executor(size: int) -> ProcessPoolExecutor:
    """A process executor of ``size`` workers started with the configured method."""
    ctx = multiprocessing.get_context(_settings.start_method)
    exe = _settings.executable or _python_executable()
    if exe != sys.executable:
        ctx.set_executable(exe)
    return ProcessPoolExecutor(max_workers=size, mp_context=ctx,
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _exit_with_parent(parent_pid: int) -> None:
    """In a pool worker: exit once the process that started it is gone.

    A worker holds both ends of its own task pipe, so it never sees EOF when
    its parent dies without a clean shutdown (a uWSGI worker killed, recycled
    or reloaded): without this, every such death would leak the pool.
    """
    import threading

    sleep = time.sleep  # bound now: the real sleep even if the job's module patches later

    def watch() -> None:
        while os.getppid() == parent_pid:
            sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="webmini-offload-parent-watch", daemon=True).start()


class _ThreadPool(_Bounded):
    """A gevent thread pool, bounded."""

    def __init__(self) -> None:
        super().__init__(_settings.threads)
        self.pool = ThreadPool(self.size)


_process_pool: _ProcessPool | None = None
_thread_pool: _ThreadPool | None = None


def configure(
    *,
    processes: int | None = None,
    threads: int | None = None,
    start_method: str | None = None,
    max_pending: int | None = None,
    executable: str | None = None,
) -> None:
    """Set pool sizes, start method, queue bound and worker python; applies to new pools.

    Call it at start-up, before the first offload (or call ``shutdown()``
    first): existing pools keep their sizes.
    """
    if processes is not None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        _settings.processes = processes
    if threads is not None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        _settings.threads = threads
    if start_method is not None:
        if start_method not in ("spawn", "forkserver"):
            # "fork" would copy a patched hub, live sockets and held locks: see the module doc.
            raise ValueError("start_method must be 'spawn' or 'forkserver'")
        _settings.start_method = start_method
    if max_pending is not None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        _settings.max_pending = max_pending
    if executable is not None:
        _settings.executable = executable


_B = TypeVar("_B", bound=_Bounded)


def _ours(pool: _B | None) -> _B | None:
    """``pool`` if this process made it; None if unset or inherited across fork."""
    # A pool inherited across fork belongs to the parent: never touch it.
    return pool if pool is not None and pool.pid == os.getpid() else None


def _get_process_pool() -> _ProcessPool:
    """Return this process's process pool, creating it on first use or after a fork."""
    global _process_pool
    pool = _process_pool = _ours(_process_pool) or _ProcessPool()
    return pool


def _get_thread_pool() -> _ThreadPool:
    """Return this process's thread pool, creating it on first use or after a fork."""
    global _thread_pool
    pool = _thread_pool = _ours(_thread_pool) or _ThreadPool()
    return pool


def _acquire(slots: BoundedSemaphore, timeout: float | None, what: str) -> None:
    """Take a queue slot cooperatively or raise ``OffloadTimeout``."""
    if not slots.acquire(timeout=timeout):
        raise OffloadTimeout(f"no free {what} slot within {timeout:g} s")


def _wait_future(future: Future[T], wait: float | None, timeout: float | None) -> T:
    """Wait for ``future`` in this greenlet only, then return its result or raise."""
    hub = gevent.get_hub()
    done = Event()
    loop = hub.loop

    def wake(_future: Future[T]) -> None:
        # Runs in whichever thread completes the future: only schedule onto the hub.
        # The hub may already be gone at interpreter exit: nothing left to wake.
        with contextlib.suppress(Exception):
            loop.run_callback_threadsafe(done.set)

    # The wake-up comes from another OS thread when the process is not
    # patched (a script, a test run): with no timer and no other watcher the
    # hub would see nothing left to wait for and raise LoopExit. A started
    # (referenced) async watcher keeps the loop alive until the call ends;
    # only this thread touches it, the other thread uses the threadsafe call.
    keepalive = loop.async_()
    keepalive.start(_nothing)
    future.add_done_callback(wake)
    try:
        if not done.wait(wait):
            future.cancel()
            raise OffloadTimeout(f"offloaded call took longer than {timeout:g} s")
    except BaseException:
        # Timeout, GreenletExit, gevent.Timeout: drop the call if it has not started.
        future.cancel()
        raise
    finally:
        keepalive.close()
    return future.result(timeout=0)


def _nothing() -> None:
    """Callback of the keep-alive watcher: it is never sent."""


def offload_process(fn: Callable[..., T], *args: Any, timeout: float | None = None,
                    **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a worker process; return its result to this greenlet.

    ``fn``, the arguments and the result travel by pickle. On ``timeout`` the
    call is cancelled if still queued; a call already running finishes in its
    worker and its result is discarded.
    """
    pool = _get_process_pool()
    deadline = None if timeout is None else time.monotonic() + timeout
    _acquire(pool.slots, timeout, "process pool")
    pool.calls += 1
    pool.running += 1
    try:
        try:
            future = pool.executor.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            # A worker died (killed, segfault): replace the pool once and retry.
            log.warning("process pool broken; starting a new one")
            pool.executor.shutdown(wait=False, cancel_futures=True)
            pool.executor = _new_executor(pool.size)
            future = pool.executor.submit(fn, *args, **kwargs)
        return _wait_future(future, _remaining(deadline), timeout)
    finally:
        pool.running -= 1
        pool.slots.release()


def offload_thread(fn: Callable[..., T], *args: Any, timeout: float | None = None,
                   **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a real OS thread; return its result to this greenlet.

    Only useful for code that releases the GIL. On ``timeout`` the thread is
    not interrupted: it finishes its call and the result is discarded.
    """
    pool = _get_thread_pool()
    deadline = None if timeout is None else time.monotonic() + timeout
    _acquire(pool.slots, timeout, "thread pool")
    pool.calls += 1
    pool.running += 1
    try:
        ctx = contextvars.copy_context()
        # spawn() itself waits (cooperatively) while all threads are busy.
        busy = OffloadTimeout(f"no free thread within {timeout:g} s") if timeout else None
        with gevent.Timeout(_remaining(deadline), busy):
            result = pool.pool.spawn(ctx.run, fn, *args, **kwargs)
        # wait() rather than get(timeout): an outer gevent.Timeout (a request
        # deadline) must propagate as itself, not turn into OffloadTimeout.
        result.wait(_remaining(deadline))
        if not result.ready():
            raise OffloadTimeout(f"offloaded call took longer than {timeout:g} s")
        return result.get()  # type: ignore[no-any-return]
    finally:
        pool.running -= 1
        pool.slots.release()


def offload(fn: Callable[..., T], *args: Any, kind: Kind = "process",
            timeout: float | None = None, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a process (default) or thread pool; return its result.

    ``kind`` and ``timeout`` are taken by ``offload`` itself; pass a function
    that needs arguments of those names through ``functools.partial``.
    """
    if kind == "process":
        return offload_process(fn, *args, timeout=timeout, **kwargs)
    if kind == "thread":
        return offload_thread(fn, *args, timeout=timeout, **kwargs)
    raise ValueError(f"kind must be 'process' or 'thread', not {kind!r}")


def stats() -> dict[str, dict[str, int]]:
    """Return calls made, calls in flight and sizes of this process's pools."""
    out: dict[str, dict[str, int]] = {}
    for kind, pool in (("process", _ours(_process_pool)), ("thread", _ours(_thread_pool))):
        if pool is not None:
            out[kind] = {"size": pool.size, "calls": pool.calls, "in_flight": pool.running}
    return out


def shutdown(wait: bool = True) -> None:
    """Stop this process's pools (queued calls are cancelled); later calls make new ones."""
    global _process_pool, _thread_pool
    process_pool, thread_pool = _ours(_process_pool), _ours(_thread_pool)
    _process_pool = _thread_pool = None
    if process_pool is not None:
        process_pool.executor.shutdown(wait=wait, cancel_futures=True)
    if thread_pool is not None:
        if wait:
            thread_pool.pool.join()
        thread_pool.pool.kill()


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (never negative), or None for no deadline."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())
