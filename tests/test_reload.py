"""Deploying under load: a reload replaces every worker without one failed or refused request.

uWSGI with uwsgi.ini (touching the reload file, or SIGHUP to the master:
both a chain reload) and gunicorn with webmini's config (SIGHUP): clients
keep sending requests, some of them slow enough to be in flight when their
worker is told to go. Counted, not timed: every request sent gets an HTTP
answer, every answer is a 200, no connection is refused or reset, the
master stays and every worker is replaced. (The longest gap between
answers is a figure of benchmarks/faults.py.)
"""

from __future__ import annotations

import http.client
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import gevent.event
import pytest
from support.gunicorn import GunicornServer
from support.servers import UwsgiServer

from localservices import child_pids

APP = """
import os

import gevent
import webmini as web


class Fast:
    def GET(self):
        return f"fast {os.getpid()}"


class Slow:
    def GET(self):
        gevent.sleep(0.3)  # in flight when its worker is told to stop
        return f"slow {os.getpid()}"


application = web.application(("/fast", "Fast", "/slow", "Slow"), globals())
"""

CLIENTS = 8


@dataclass
class Seen:
    """What the clients saw."""

    sent: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    served_by: list[int] = field(default_factory=list)  # worker pid of each answer, in order

    def count(self, what: str) -> None:
        self.answers[what] = self.answers.get(what, 0) + 1


def _client(port: int, n: int, stop: gevent.event.Event, seen: Seen) -> None:
    path = "/slow" if n % 2 else "/fast"
    while not stop.is_set():
        seen.sent += 1
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            word, _, pid = resp.read().decode().partition(" ")
            ok = resp.status == 200 and word == path[1:]
            seen.count(str(resp.status) if ok or resp.status != 200 else "200 with a wrong body")
            if ok:
                seen.served_by.append(int(pid))
        except ConnectionRefusedError:
            seen.count("refused")
        except (OSError, http.client.HTTPException) as e:
            seen.count(type(e).__name__)
        finally:
            conn.close()
        gevent.sleep(0.01)


def _under_load(port: int, workers: Callable[[], list[int]], trigger: Callable[[], None],
                done: Callable[[set[int]], bool], timeout: float = 120.0) -> tuple[Seen, set[int]]:
    """Load, trigger the reload, wait until ``done(old workers)``, load a little more."""
    seen = Seen()
    stop = gevent.event.Event()
    clients = [gevent.spawn(_client, port, n, stop, seen) for n in range(CLIENTS)]
    try:
        gevent.sleep(1.0)
        old = set(workers())
        trigger()
        deadline = time.monotonic() + timeout
        while not done(old):
            assert time.monotonic() < deadline, f"workers not replaced; {seen}"
            gevent.sleep(0.1)
        gevent.sleep(1.0)
    finally:
        stop.set()
        gevent.joinall(clients, timeout=60)
    return seen, old


def _assert_clean(seen: Seen, old: set[int]) -> None:
    answered = sum(seen.answers.values())
    assert seen.answers.get("refused", 0) == 0, seen
    assert set(seen.answers) == {"200"}, seen  # no error of any kind
    assert answered == seen.sent and answered > 100, seen  # every request got its answer
    # Old and new workers overlapped: an old worker still answered after a
    # new one had answered (never a stretch with nobody accepting).
    first_new = next(i for i, pid in enumerate(seen.served_by) if pid not in old)
    last_old = max(i for i, pid in enumerate(seen.served_by) if pid in old)
    assert last_old > first_new, (first_new, last_old)


@pytest.mark.uwsgi
@pytest.mark.parametrize("how", ["touch", "SIGHUP"])
def test_uwsgi_reload_replaces_workers_one_by_one_without_a_failure(tmp_path: Path, how: str) -> None:
    (tmp_path / "reloadapp.py").write_text(APP)
    server = UwsgiServer(tmp_path, module="reloadapp:application", processes=3).start()
    try:
        master = server.pid

        def done(old: set[int]) -> bool:
            now = set(server.worker_pids())
            return (len(now) == 3 and not now & old
                    and "chain reloading complete" in server.log_text())

        seen, old = _under_load(server.http_port, server.worker_pids,
                                server.touch if how == "touch" else server.reload, done)
        _assert_clean(seen, old)
        assert server.pid == master and server.running
        log = server.log_text()
        assert "binary reloading" not in log and "chain next victim is worker 3" in log
        # Never two workers down at once: each victim was named after the
        # previous one's replacement accepted.
        assert log.count("chain next victim") == 3
    finally:
        server.stop()


def test_gunicorn_hup_hands_over_without_a_failure(tmp_path: Path) -> None:
    (tmp_path / "reloadapp.py").write_text(APP)
    server = GunicornServer(tmp_path, "reloadapp:application", processes=3).start()
    try:
        assert server.proc is not None
        master = server.proc.pid

        def done(old: set[int]) -> bool:
            now = set(server.worker_pids())
            return len(now) == 3 and not now & old

        seen, old = _under_load(server.port, server.worker_pids,
                              lambda: server.proc.send_signal(signal.SIGHUP), done)  # type: ignore[union-attr]
        _assert_clean(seen, old)
        assert server.proc.pid == master and server.proc.poll() is None
    finally:
        server.stop()


DEV_APP = """
import os
import time

import gevent

time.sleep(0.5)  # an app that takes a moment to import


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        gevent.sleep(0.3)
    body = f"{environ['PATH_INFO'][1:]} {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
# version 1
"""


def test_dev_server_reload_starts_the_new_workers_before_stopping_the_old(webmini_run, tmp_path):
    module = tmp_path / "devreload.py"
    module.write_text(DEV_APP)
    server = webmini_run("devreload:app", "--reload", "--workers", "2")
    gevent.sleep(1.0)  # the workers import, the watcher settles

    def workers() -> list[int]:
        return child_pids(server.proc.pid)

    def done(old: set[int]) -> bool:
        now = set(workers())
        return len(now) == 2 and not now & old and "reloading (devreload.py)" in server.output()

    seen, old = _under_load(server.port, workers,
                            lambda: module.write_text(DEV_APP.replace("version 1", "version 2")),
                            done)
    _assert_clean(seen, old)
