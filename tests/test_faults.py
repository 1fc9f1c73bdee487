"""Faults under load: the todo example under uwsgi.ini while memcached, MariaDB and uWSGI misbehave.

Logged-in clients update their own todos and read them back while, in
turn, a memcached node dies and comes back, MariaDB restarts and uWSGI
reloads (SIGHUP). Every read is checked against the last write its client
saw succeed: no stale read, no 2xx that was not one (a login whose session
was not stored), every 5xx logged by webmini with its cause, and no
"Aborted connection" at the reload (the workers close their pools).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import pytest

from localservices import call_json

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16


def _status_var(mariadb: Any, name: str) -> int:
    conn = mariadb.root_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
            row = cur.fetchone()
    finally:
        conn.close()
    return int(row[1])


@pytest.fixture
def todo_uwsgi(start_todo: Any) -> Iterator[tuple[int, Path, Any]]:
    """The todo example under uwsgi.ini (2 gevent workers), its log in a file."""
    server = start_todo(processes=2, gevent=100)
    yield server.http_port, server.log_path, server


#: Content-Type of the answers seen, by status; answers without a request id.
CONTENT_TYPES: dict[int, set[str]] = {}
UNTAGGED: list[str] = []


def _call(port: int, method: str, path: str, body: Any = None,
          cookie: str = "") -> tuple[int, Any, str]:
    """``call_json``: (status, JSON body, Set-Cookie value), each answer's Content-Type and
    request id recorded; status 0: refused or reset (a reload in progress), retried."""
    reply = call_json(port, method, path, body, cookie, timeout=15)
    assert reply.failure != "malformed", f"{method} {path}: an answer broken off or not HTTP"
    if reply.status:
        CONTENT_TYPES.setdefault(reply.status, set()).add(reply.headers.get("content-type", ""))
        if not reply.headers.get("x-request-id"):
            UNTAGGED.append(f"{method} {path} {reply.status}")
    return reply.status, reply.data, reply.cookie


@dataclass
class Tally:
    """What the clients saw."""

    reads: int = 0
    writes: int = 0
    stale: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    fivexx: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    events: list[float] = field(default_factory=list)  # when faults began or ended

    def saw(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500:
            self.fivexx += 1

    def near_event(self, t: float, margin: float = 1.0) -> bool:
        return any(abs(t - e) < margin for e in self.events)


def _until(what: str, done: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the clients run until ``done()`` (polled every 50 ms); fail if it never is."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"still waiting for {what} after {timeout} s"
        gevent.sleep(0.05)


def _traffic(tally: Tally, writes: int = 200) -> None:
    """Let the clients run until ``writes`` more writes succeeded."""
    target = tally.writes + writes
    _until(f"{writes} more successful writes", lambda: tally.writes >= target)


def _logged(log: Path, text: str, times: int, start: int) -> None:
    """Let the clients run until ``text`` is in the log ``times`` times after byte ``start``."""
    def seen() -> bool:
        with open(log, "rb") as f:
            f.seek(start)
            return f.read().count(text.encode()) >= times
    _until(f"{times} x {text!r} in the log", seen)


def _client(port: int, n: int, stop: gevent.event.Event, tally: Tally) -> None:
    user = f"user{n}"
    cookie = ""
    todo_id = 0
    acked = -1  # the newest title this client saw succeed (or read)
    attempted: set[int] = set()  # writes answered 5xx: they may or may not have happened
    version = 0
    while not stop.is_set():
        if not cookie:
            status, _, set_cookie = _call(port, "POST", "/login", {"user": user})
            tally.saw(status)
            if status != 200:
                gevent.sleep(0.05)
                continue
            cookie = set_cookie
            at = time.monotonic()
            check = _call(port, "GET", "/todos", cookie=cookie)[0]
            tally.saw(check)
            if check == 401 and not tally.near_event(at):
                tally.silent.append(f"{user}: login answered 200, the session was not there")
            if check != 200:
                cookie = ""
                continue
        if not todo_id:
            status, made, _ = _call(port, "POST", "/todos", {"title": "t-1"}, cookie)
            tally.saw(status)
            if status == 401:
                cookie = ""
            elif status == 201:
                todo_id = made["id"]
            continue
        version += 1
        status, _, _ = _call(port, "PATCH", f"/todos/{todo_id}", {"title": f"t{version}"}, cookie)
        tally.saw(status)
        if status == 401:
            cookie = ""
            continue
        if status == 200:
            tally.writes += 1
            acked, attempted = version, set()
        elif status >= 500 or status == 0:
            attempted.add(version)
        status, got, _ = _call(port, "GET", f"/todos/{todo_id}", cookie=cookie)
        tally.saw(status)
        if status == 401:
            cookie = ""
        elif status == 200:
            tally.reads += 1
            seen = int(got["title"][1:])
            if seen != acked and seen not in attempted:
                tally.stale.append(f"{user}: read t{seen}, last acknowledged write t{acked}")
            elif seen in attempted:
                acked, attempted = seen, {v for v in attempted if v > seen}
        gevent.sleep(0)


def test_faults_under_load(todo_uwsgi: tuple[int, Path, Any], mariadb: Any, memcached: Any) -> None:
    """memcached node down and back, MariaDB restart, uWSGI reload: 0 stale, 0 silent, 5xx logged.

    Each phase lasts until what it waits for is seen (polled), then 200 more
    successful writes (~12 per client) run before the next fault.
    """
    port, log, server = todo_uwsgi
    proc = server.proc
    tally = Tally()
    stop = gevent.event.Event()
    clients = [gevent.spawn(_client, port, n, stop, tally) for n in range(CLIENTS)]

    def event() -> None:
        tally.events.append(time.monotonic())

    _traffic(tally)

    victim = memcached.nodes[1]
    event()
    start = log.stat().st_size
    victim.kill()  # its keys and sessions fall to the next node
    # Both workers saw it fail and fail over; then traffic during the outage.
    _logged(log, f"memcached {victim.address} is down", 2, start)
    _traffic(tally)

    event()
    start = log.stat().st_size
    victim.restart()  # back, empty: the workers fail back (a delete reaches it first)
    _logged(log, f"memcached {victim.address} is back", 2, start)
    _traffic(tally)  # traffic after the failback

    event()
    mariadb.restart()  # ~3 s of 503s (cooperative: the clients keep going)
    event()
    _traffic(tally)  # served again after the restart
    aborted = _status_var(mariadb, "Aborted_clients")

    event()
    old_workers = server.worker_pids()
    start = log.stat().st_size
    proc.send_signal(signal.SIGHUP)  # graceful reload: workers close their pools on exit
    # Every worker replaced (one at a time) and accepting again.
    _logged(log, "chain reloading complete", 1, start)
    assert not set(server.worker_pids()) & set(old_workers), server.worker_pids()
    event()
    _traffic(tally)

    stop.set()
    gevent.joinall(clients, timeout=30)
    assert all(c.dead for c in clients)
    for c in clients:
        c.get()  # a client that raised fails the test here

    text = log.read_text(errors="replace")
    logged_5xx = len(re.findall(r"answered 5\d\d|unhandled error", text))
    summary = (f"reads={tally.reads} writes={tally.writes} statuses={tally.statuses} "
               f"logged 5xx={logged_5xx}")
    assert tally.reads > 200 and tally.writes > 200, summary
    assert tally.stale == [], summary + "\n" + "\n".join(tally.stale[:20])
    assert tally.silent == [], summary + "\n" + "\n".join(tally.silent[:20])
    assert tally.fivexx > 0, summary  # the MariaDB restart must have shown
    # Connections lost to the restart are 503s with Retry-After, never a 500.
    unhandled = [text[m.start():m.start() + 2500] for m in re.finditer("unhandled error", text)]
    assert 500 not in tally.statuses, summary + "\n" + "\n".join(unhandled[:3])
    assert logged_5xx >= tally.fivexx, summary + "\n" + text[-3000:]
    # The workers that exited at the reload closed their MariaDB connections.
    assert _status_var(mariadb, "Aborted_clients") == aborted, summary
    # Every logged 5xx names its cause: "answered 503: <why>" or a traceback,
    # with webmini's class (the one README names), the driver's error as its cause.
    for line in re.findall(r"answered 5\d\d .*", text):
        assert re.search(r": service unavailable \((ConnectError|DatabaseUnavailable|PoolTimeout)"
                         r"(, caused by \w+: .+)?\)", line), line
    # Every error in the app's one format (RFC 9457), webmini's 503s included.
    for status, types in CONTENT_TYPES.items():
        if status >= 400:
            assert types == {"application/problem+json"}, (status, types)
    # The app object served directly: request ids and access lines, under uWSGI.
    assert UNTAGGED == [], UNTAGGED[:5]
    assert re.search(r'^\S+ \S+ INFO \[pid \d+ worker \d\] webmini\.access: 127\.0\.0\.1 '
                     r'"PATCH /todos/\d+ HTTP/1\.[01]" 200 ', text, re.M), text[-2000:]
