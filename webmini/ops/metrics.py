"""Per-worker request metrics in the Prometheus text format.

``metrics = Metrics(db=db, cache=cache, spool_dir="/run/webmini-metrics")``;
``app.add_processor(metrics.processor)``; ``("/metrics", metrics.handler)``
in the URL table. Every worker process counts its own requests (by status
code and route), a latency histogram per route, requests in flight, and reports its MySQL pool
and memcached ring state; every sample carries ``worker`` (the uWSGI worker
id, 0 outside uWSGI) and ``pid`` labels. ``route`` is the URL-table pattern
that matched (``web.ctx.route``, e.g. ``/users/([0-9]+)``), never the raw path,
so the series stay as few as the table's rows; a request no row matched
(a 404) counts under ``route="(unmatched)"``.

Why labels and not uWSGI's metrics subsystem: a request to ``/metrics``
reaches one worker chosen by the kernel, so a worker alone can only tell
its own story. uWSGI's shared-memory metrics would aggregate, but they are
plain integers declared up front (no label sets, no histogram), and every
update takes a lock shared by all workers. Here the hot path touches only
process-local integers; with ``spool_dir`` each worker also writes its
snapshot to a file at most every ``flush_interval`` seconds (and once
more after the last request of a busy spell, under gevent), and whichever
worker answers ``/metrics`` renders all the live workers' snapshots (one
series per worker; ``sum by (code) (...)`` in PromQL aggregates). Without
``spool_dir`` the answer holds only the answering worker's series. Scrape
each node directly (its own address, one target per node), not through
the load balancer, and give each node its own ``spool_dir``.
"""

from __future__ import annotations

import json
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from webmini._extras import gevent_patched
from webmini.ctx import current
from webmini.errors import HTTPError
from webmini.response import header
from webmini.routing import SUBAPP
from webmini.rundir import PrivateDir
from webmini.serving.uwsgi import worker_id

__all__ = ["CONTENT_TYPE", "DEFAULT_BUCKETS", "UNMATCHED", "Metrics", "worker_id"]

#: The ``route`` label of requests no URL-table row matched.
UNMATCHED = "(unmatched)"

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; the last bucket (+Inf) is implicit.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

# family name suffix -> (type, help); rendered in this order.
_FAMILIES: dict[str, tuple[str, str]] = {
    "worker_start_time_seconds": ("gauge", "Unix time the worker process started counting."),
    "requests_total": ("counter", "Requests answered, by status code and route."),
    "requests_in_flight": ("gauge", "Requests being served now."),
    "request_duration_seconds": ("histogram", "Time spent in the application, by route."),
    "db_pool_connections": ("gauge", "MySQL pool connections by state (in_use, idle)."),
    "db_pool_size": ("gauge", "Configured MySQL pool size (plus max_overflow)."),
    "db_pool_waiting": ("gauge", "Greenlets waiting for a MySQL connection."),
    "db_pool_connects_total": ("counter", "MySQL connections opened."),
    "db_pool_discards_total": ("counter", "MySQL connections discarded after an error."),
    "db_pool_timeouts_total": ("counter", "Waits for a MySQL connection that timed out."),
    "cache_node_up": ("gauge", "1 if the memcached node is in the ring, 0 while marked down."),
    "cache_connections": ("gauge", "memcached connections by node and state (in_use, idle)."),
    "cache_node_failures_total": ("counter", "Times the memcached node was marked down."),
}


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(base: str, extra: Iterable[tuple[str, object]] = ()) -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in extra]
    return "{" + ",".join([base, *parts] if base else parts) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Metrics:
    """Request counters, latency histogram and pool/ring gauges of one worker process."""

    def __init__(
        self,
        *,
        db: Any = None,
        cache: Any = None,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
        namespace: str = "webmini",
        spool_dir: str | None = None,
        flush_interval: float = 1.0,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.cache = cache
        self.namespace = namespace
        self.bounds: tuple[float, ...] = tuple(sorted(float(b) for b in buckets))
        self.spool_dir = spool_dir
        self._spool_dir: PrivateDir | None = None
        self._spool_pid = 0
        self.flush_interval = flush_interval
        # Constant labels on every sample, e.g. {"node": "node1"}.
        self.labels = dict(labels or {})
        self.handler = self._make_handler()
        self.reset()

    def reset(self) -> None:
        """Zero every counter (a new process, or a test)."""
        self.started = time.time()
        self.pid = os.getpid()
        # PERF: keyed by the matched URL-table row itself (a Route, hashed by
        # identity; with its sub-app prefix as (row, prefix) under a sub-app),
        # named only when rendered (see _route_name). Per row: [{status code:
        # requests}, seconds in total, then one count per bucket bound plus
        # +Inf (per bucket, made cumulative only when rendered)].
        self.route_stats: dict[Any, list[Any]] = {}
        self.in_flight = 0
        self._next_flush = 0.0 if self.spool_dir else float("inf")
        # True while a trailing flush is scheduled (always True without a spool,
        # or without gevent, so the hot path never tries to schedule one).
        self._trailing = not (self.spool_dir and gevent_patched())

    # -- the hot path -----------------------------------------------------

    def processor(self, handler: Callable[[], Any]) -> Any:
        """Count the request, its status code and its latency (add with ``app.add_processor``)."""
        # PERF: runs on every request: process-local numbers and two dict
        # updates keyed by the matched row itself (a reference the router
        # keeps; the route label is made when rendered), no locks, no label
        # formatting, no allocation beyond the float and the keys.
        start = time.perf_counter()
        self.in_flight += 1
        code = "500"
        c = current()
        try:
            result = handler()
            code = c.status[:3]
            return result
        except HTTPError as e:
            code = e.status[:3]
            raise
        finally:
            elapsed = time.perf_counter() - start
            self.in_flight -= 1
            prefix = c.route_prefix
            row = c.matched_route if prefix is None else (c.matched_route, prefix)
            stats = self.route_stats.get(row)
            if stats is None:
                stats = self.route_stats[row] = [{}, 0.0, *([0] * (len(self.bounds) + 1))]
            counts = stats[0]
            counts[code] = counts.get(code, 0) + 1
            stats[1] += elapsed
            stats[2 + bisect_left(self.bounds, elapsed)] += 1
            if start >= self._next_flush:
                self.flush(start)
            elif not self._trailing:
                self._schedule_trailing_flush(start)

    # -- snapshots ----------------------------------------------------------

    def _check_process(self) -> None:
        # A Metrics made before fork (uWSGI without lazy-apps) starts afresh
        # in each worker: counts never leak from the parent into the child.
        if os.getpid() != self.pid:
            self.reset()

    def samples(self) -> list[tuple[str, str]]:
        """Return this worker's ``(family, sample line)`` pairs, family names unprefixed."""
        self._check_process()
        ns = self.namespace
        base = _labels("", [*self.labels.items(), ("worker", worker_id()), ("pid", self.pid)])
        base = base[1:-1]
        out: list[tuple[str, str]] = []

        def add(family: str, value: float, extra: Iterable[tuple[str, object]] = (),
                suffix: str = "") -> None:
            out.append((family, f"{ns}_{family}{suffix}{_labels(base, extra)} {_number(value)}"))

        add("worker_start_time_seconds", round(self.started, 3))
        for (route, code), count in sorted(self.request_counts().items()):
            add("requests_total", count, [("code", code), ("route", route)])
        add("requests_in_flight", self.in_flight)
        for route, stats in sorted(self.latency().items()):
            cumulative = 0
            for bound, in_bucket in zip((*self.bounds, float("inf")), stats, strict=False):
                cumulative += int(in_bucket)
                add("request_duration_seconds", cumulative,
                    [("route", route), ("le", _number(bound))], "_bucket")
            add("request_duration_seconds", round(stats[-1], 6), [("route", route)],
                suffix="_sum")
            add("request_duration_seconds", cumulative, [("route", route)], suffix="_count")
        if self.db is not None:
            self._db_samples(add)
        if self.cache is not None:
            self._cache_samples(add)
        return out

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Requests so far as ``{(route, status code): count}``."""
        out: dict[tuple[str, str], int] = {}
        for row, stats in self.route_stats.items():
            name = _route_name(row)
            for code, count in stats[0].items():
                out[name, code] = out.get((name, code), 0) + count
        return out

    def latency(self) -> dict[str, list[float]]:
        """Per route: the per-bucket counts (the last one +Inf), then the sum of seconds."""
        out: dict[str, list[float]] = {}
        for row, stats in self.route_stats.items():
            mine = [*stats[2:], stats[1]]
            name = _route_name(row)
            if name in out:  # e.g. 404s under several sub-applications
                mine = [a + b for a, b in zip(out[name], mine, strict=True)]
            out[name] = mine
        return out

    def _db_samples(self, add: Callable[..., None]) -> None:
        stats = self.db.stats()
        add("db_pool_connections", stats["in_use"], [("state", "in_use")])
        add("db_pool_connections", stats["idle"], [("state", "idle")])
        add("db_pool_size", stats["pool_size"] + stats.get("max_overflow", 0))
        add("db_pool_waiting", stats["waiting"])
        add("db_pool_connects_total", stats["connects"])
        add("db_pool_discards_total", stats["discards"])
        add("db_pool_timeouts_total", stats["timeouts"])

    def _cache_samples(self, add: Callable[..., None]) -> None:
        nodes = self.cache.stats()["nodes"]
        for name, node in sorted(nodes.items()):
            add("cache_node_up", 1 if node["up"] else 0, [("node", name)])
        for name, node in sorted(nodes.items()):
            add("cache_connections", node["in_use"], [("node", name), ("state", "in_use")])
            add("cache_connections", node["idle"], [("node", name), ("state", "idle")])
        for name, node in sorted(nodes.items()):
            add("cache_node_failures_total", node["failures"], [("node", name)])

    def _schedule_trailing_flush(self, now: float) -> None:
        # The last requests before a quiet spell would otherwise stay unspooled
        # until the next request: flush once more when the interval is over,
        # so a spooled snapshot is never more than flush_interval behind.
        import gevent

        self._trailing = True
        gevent.spawn_later(max(0.0, self._next_flush - now), self._trailing_flush)

    def _trailing_flush(self) -> None:
        self._trailing = False
        self.flush()

    def flush(self, now: float | None = None) -> None:
        """Write this worker's snapshot to ``spool_dir`` (atomically); no-op without one."""
        if not self.spool_dir:
            return
        now = time.perf_counter() if now is None else now
        self._next_flush = now + self.flush_interval
        self._check_process()
        try:
            spool = self._spool()
            data = json.dumps({"pid": self.pid, "samples": self.samples()}).encode()
            # SECURITY: a fresh O_EXCL|O_NOFOLLOW temp file renamed within the
            # held 0700 directory: a planted symlink is never written through.
            spool.write_atomic(f"worker-{self.pid}.json", data)
        except OSError:  # metrics must never break a request
            pass

    def _spool(self) -> PrivateDir:
        """The spool directory, checked and held open once per process."""
        spool = self._spool_dir
        if spool is None or self._spool_pid != os.getpid():
            assert self.spool_dir is not None
            if spool is not None:
                spool.close()
            # SECURITY: created 0700; one that is a symlink, not ours or open
            # to others is refused (PermissionError, an OSError: no spool).
            spool = self._spool_dir = PrivateDir(self.spool_dir)
            self._spool_pid = os.getpid()
        return spool

    def _spooled(self) -> list[tuple[str, str]]:
        """Samples of the other live workers found in ``spool_dir``."""
        assert self.spool_dir is not None
        found: list[tuple[str, str]] = []
        try:
            spool = self._spool()
            names = spool.listdir()
        except OSError:
            return found
        for name in sorted(names):
            if not (name.startswith("worker-") and name.endswith(".json")):
                continue
            raw = spool.read(name)  # None unless a regular file of ours
            if raw is None:
                continue
            try:
                snap = json.loads(raw)
                pid = int(snap["pid"])
                samples = [(str(fam), str(line)) for fam, line in snap["samples"]]
            except (ValueError, KeyError, TypeError):
                continue
            if pid == self.pid:
                continue  # this worker reports live figures instead
            if not _alive(pid):
                # A worker that exited (reload, respawn): its series end here.
                spool.unlink(name)
                continue
            # SECURITY: only lines that are samples of our own families.
            found.extend((fam, line) for fam, line in samples
                         if fam in _FAMILIES and "\n" not in line
                         and line.startswith(f"{self.namespace}_{fam}"))
        return found

    def render(self) -> str:
        """Return the Prometheus text exposition of this worker (and the spooled ones)."""
        samples = self.samples()
        if self.spool_dir:
            self.flush()
            samples += self._spooled()
        by_family: dict[str, list[str]] = {}
        for family, line in samples:
            by_family.setdefault(family, []).append(line)
        lines: list[str] = []
        for family, (kind, help_text) in _FAMILIES.items():
            rows = by_family.get(family)
            if not rows:
                continue
            name = f"{self.namespace}_{family}"
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(rows)
        return "\n".join(lines) + "\n"

    def _make_handler(self) -> type:
        metrics = self

        class MetricsHandler:
            """``GET /metrics``: the Prometheus text exposition."""

            def GET(self) -> str:  # noqa: N802 - HTTP method name
                """Render the metrics."""
                header("Content-Type", CONTENT_TYPE)
                header("Cache-Control", "no-store")
                return metrics.render()

        return MetricsHandler


def _route_name(row: Any) -> str:
    """The ``route`` label of a ``route_stats`` key (as ``web.ctx.route`` reads it)."""
    prefix = ""
    if type(row) is tuple:
        row, prefix = row
    if row is None or row.kind == SUBAPP:
        return UNMATCHED
    return prefix + str(row.pattern)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


