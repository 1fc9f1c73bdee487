"""Readiness and liveness endpoints for load balancers and orchestrators.

``("/healthz", health.readiness(db=db, cache=cache))`` in the URL table
answers 200 with JSON details when this worker can serve (MySQL answers a
``SELECT 1`` through the pool, enough memcached nodes answer), and 503 with
the same details when it cannot. ``liveness()`` answers 200 as long as the
worker runs at all. Checks are bounded by ``timeout`` in total, so a hung
upstream makes the probe fail fast instead of hanging the prober.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from webmini._extras import require
from webmini.response import header, set_status

log = logging.getLogger("webmini")

__all__ = ["check", "liveness", "readiness"]

Check = Callable[[], Any]


def _timeout(seconds: float) -> Any:
    with require("gevent", "webmini.ops.health"):
        import gevent
    return gevent.Timeout(seconds)


def _db_check(db: Any) -> dict[str, Any]:
    row = db.query_one("SELECT 1 AS ok")
    if not row or int(next(iter(row.values()))) != 1:
        raise RuntimeError(f"unexpected reply to SELECT 1: {row!r}")
    stats = db.stats()
    return {"pool": {k: stats[k] for k in ("size", "in_use", "idle", "waiting", "pool_size")}}


def _cache_check(cache: Any, min_nodes: int) -> dict[str, Any]:
    # server_stats() asks every node not inside its retry delay (a down node
    # is None): an active probe, not only the client's memory of failures.
    replies = cache.server_stats()
    nodes = {name: reply is not None for name, reply in replies.items()}
    up = sum(nodes.values())
    detail = {"nodes": nodes, "up": up, "required": min_nodes}
    if up < min_nodes:
        raise _NotReady(detail, f"{up} of {len(nodes)} memcached nodes answer, {min_nodes} needed")
    return detail


class _NotReady(Exception):
    """A check failed but still has details to show."""

    def __init__(self, detail: dict[str, Any], message: str) -> None:
        super().__init__(message)
        self.detail = detail


def check(
    db: Any = None,
    cache: Any = None,
    *,
    timeout: float = 2.0,
    min_cache_nodes: int = 1,
    checks: Mapping[str, Check] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Run the readiness checks; return ``(ready, report)`` (the report is JSON-able)."""
    todo: list[tuple[str, Check]] = []
    if db is not None:
        todo.append(("db", lambda: _db_check(db)))
    if cache is not None:
        todo.append(("cache", lambda: _cache_check(cache, min_cache_nodes)))
    todo.extend((checks or {}).items())
    report: dict[str, Any] = {}
    ready = True
    start = time.monotonic()
    timer = _timeout(timeout)
    timer.start()
    try:
        for name, func in todo:
            t0 = time.monotonic()
            entry: dict[str, Any]
            try:
                detail = func()
                entry = {"ok": True}
                if isinstance(detail, dict):
                    entry.update(detail)
            except _NotReady as e:
                entry = {"ok": False, "error": str(e), **e.detail}
            except Exception as e:  # any failure makes the worker not ready
                entry = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            except BaseException as e:
                if e is not timer:
                    raise
                entry = {"ok": False, "error": f"timed out after {timeout:g} s"}
                ready = False
                report[name] = entry
                break
            entry["seconds"] = round(time.monotonic() - t0, 4)
            ready = ready and entry["ok"]
            report[name] = entry
    finally:
        timer.close()
    for name, _ in todo:  # checks skipped by the timeout
        report.setdefault(name, {"ok": False, "error": "not run (timeout)"})
        ready = ready and report[name]["ok"]
    report["seconds"] = round(time.monotonic() - start, 4)
    return ready, report


def readiness(
    db: Any = None,
    cache: Any = None,
    *,
    timeout: float = 2.0,
    min_cache_nodes: int = 1,
    checks: Mapping[str, Check] | None = None,
    node: str | None = None,
    details: bool = False,
) -> type:
    """Return a handler class: 200 + JSON when the pool and the ring answer, 503 otherwise.

    The body says which checks passed. With ``details=True`` it also holds
    pool figures, memcached node addresses and error messages (which name
    internal hosts and database users): only where /healthz is reachable
    from the monitoring network alone (deploy/nginx.conf allows loopback).
    """

    class Readiness:
        """``GET /healthz``: can this worker serve requests?"""

        def GET(self) -> dict[str, Any]:  # noqa: N802 - HTTP method name
            """Run the checks and report."""
            ready, report = check(db, cache, timeout=timeout, min_cache_nodes=min_cache_nodes,
                                  checks=checks)
            if not details:
                # SECURITY: error messages and node lists name internal hosts
                # and database users: logged here, not sent to whoever asks.
                for name, entry in report.items():
                    if isinstance(entry, dict) and not entry.get("ok", True):
                        log.warning("/healthz: %s not ready: %s", name, entry.get("error"))
                report = {name: ({"ok": bool(entry.get("ok"))} if isinstance(entry, dict)
                                 else entry) for name, entry in report.items()}
            header("Cache-Control", "no-store")
            if not ready:
                set_status(503)
            out: dict[str, Any] = {"ready": ready, **report}
            if node is not None:
                out["node"] = node
            return out

    return Readiness


def liveness() -> type:
    """Return a handler class answering 200 ``{"alive": true}`` while the worker runs."""

    class Liveness:
        """``GET /livez``: is the worker's event loop answering at all?"""

        def GET(self) -> dict[str, Any]:  # noqa: N802 - HTTP method name
            """Answer at once."""
            header("Cache-Control", "no-store")
            return {"alive": True}

    return Liveness
