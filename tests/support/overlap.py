"""Several pytest processes at once (scripts/test.sh runs one per Python): timed tests alone.

A test that bounds a wall-clock time (a hub stall, a timeout, N requests in
about one latency) is listed in ``TIMED``. When ``$WEBMINI_TEST_LOCK`` names a
file (scripts/test.sh sets it when it runs the Pythons at once), every test
holds a shared lock on it and a timed test an exclusive one: a timed test runs
while the other processes wait between two tests, so their load does not
count against its bound; everything else overlaps. Consecutive timed tests
share one exclusive hold. A third file is the turnstile that keeps a waiting
timed test from being overtaken forever.
Without the variable nothing is locked.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from typing import IO

import pytest

#: ``file::test`` of every test with a wall-clock bound (parametrized ones: all their cases).
TIMED = frozenset({
    "test_async_handlers.py::test_hub_monitor_names_an_async_handler_that_blocks",
    "test_cache.py::test_dead_node_under_load",
    # A node killed, restarted and reloaded under load, no request may fail:
    # one PUT was cut off once (RemoteDisconnected) with three Pythons at once.
    "test_cluster.py::test_failover_under_load",
    "test_faults.py::test_faults_under_load",
    "test_cache.py::test_frozen_node_costs_at_most_the_socket_timeout",
    "test_cache.py::test_pool_timeout_is_a_miss_not_a_down_node",
    "test_db.py::test_acquire_timeout_raises_clear_error",
    "test_db.py::test_connect_timeout_bounds_the_handshake",
    "test_db.py::test_fifty_sleeps_over_ten_connections_run_concurrently",
    "test_db.py::test_gevent_timeout_mid_query_discards_connection",
    "test_db.py::test_read_timeout_ends_a_statement_and_frees_its_slot",
    "test_db.py::test_statements_use_no_socket_timeouts_but_raw_use_does",
    "test_devserver.py::test_idle_keepalive_connection_is_closed",
    "test_devserver.py::test_keepalive_client_gets_sub_millisecond_latency",
    "test_devserver.py::test_sigterm_grace_is_bounded",
    "test_devserver.py::test_sigterm_lets_in_flight_requests_finish",
    "test_devserver.py::test_slow_header_client_is_cut_off_while_others_are_served",
    "test_green.py::test_application_timeout_and_handler_override",
    "test_green.py::test_handler_over_its_timeout_gets_504_while_siblings_are_served",
    "test_green.py::test_monitor_ignores_cooperative_waits",
    "test_green.py::test_monitor_names_the_request_and_handler_that_blocked",
    "test_metrics.py::test_readiness_is_bounded_when_mysql_hangs",
    # Ten in-process requests must each take under 50 ms (the histogram's bucket).
    "test_metrics.py::test_processor_counts_status_codes_and_latency",
    "test_mysql_tls.py::test_pool_operations_never_stall_the_hub",
    "test_mysql_tls.py::test_tls_handshakes_never_stall_the_hub",
    "test_nginx.py::test_concurrent_slow_requests_through_nginx",
    "test_offload.py::test_pings_stay_fast_while_offloaded_heavy_request_runs",
    "test_offload.py::test_process_offload_runs_elsewhere_and_keeps_hub_free",
    "test_offload.py::test_process_timeout_and_cancel_of_queued_call",
    "test_offload.py::test_thread_offload_returns_result_and_keeps_hub_free",
    "test_offload.py::test_thread_timeout_covers_waiting_for_a_busy_thread",
    "test_offload.py::test_uwsgi_worker_makes_its_own_pool_and_keeps_serving",
    "test_uwsgi.py::test_one_worker_serves_1000_waiting_requests_at_once",
    "test_webpy_db.py::test_postgres_is_cooperative",
    "test_webpy_db.py::test_sqlite_calls_leave_the_hub_free",
    "test_webpy_mail.py::test_sendmail_parks_only_its_greenlet",
    "test_websocket.py::test_ping_timeout_drops_a_silent_peer",
    "test_workqueue.py::test_workers_run_concurrently",
})


def is_timed(item: pytest.Item) -> bool:
    """True when ``item`` (any parametrization of it) is listed in ``TIMED``."""
    name = getattr(item, "originalname", None) or item.name.split("[", 1)[0]
    return f"{item.path.name}::{name}" in TIMED


class _Locks:
    """The shared/exclusive lock and its turnstile, opened once per process."""

    def __init__(self, path: str) -> None:
        self.main: IO[str] = open(path, "a")  # noqa: SIM115 - held for the whole session
        self.turnstile: IO[str] = open(path + ".turnstile", "a")  # noqa: SIM115
        #: the exclusive lock is still held from the previous (timed) test
        self.kept = False

    def hold(self, exclusive: bool) -> None:
        # Through the turnstile first: a timed test waiting in it for the
        # exclusive lock stops new shared holders from passing it.
        fcntl.flock(self.turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        # The wait blocked the whole process, gevent's loop included: its cached
        # clock is as old as the wait, and a timer started before the loop turns
        # again (a test's gevent.Timeout, joinall(timeout=...)) would fire early.
        if "gevent" in sys.modules:
            sys.modules["gevent"].get_hub().loop.update_now()

    def release(self) -> None:
        fcntl.flock(self.main, fcntl.LOCK_UN)


_locks: _Locks | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Open the lock files when ``$WEBMINI_TEST_LOCK`` names one."""
    global _locks
    path = os.environ.get("WEBMINI_TEST_LOCK")
    _locks = _Locks(path) if path else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Run ``item`` (set-up, call, tear-down) under the shared or the exclusive lock."""
    if _locks is None:
        yield
        return
    exclusive = is_timed(item)
    if not (exclusive and _locks.kept):
        _locks.hold(exclusive)
    try:
        yield
    finally:
        # A timed test followed by another keeps the exclusive lock for it:
        # one wait for the others to finish their current test instead of two.
        _locks.kept = exclusive and nextitem is not None and is_timed(nextitem)
        if not _locks.kept:
            _locks.release()
