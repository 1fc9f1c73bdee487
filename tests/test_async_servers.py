"""``async def`` handlers under the dev server, uWSGI (uwsgi.ini) and gunicorn (webmini's config).

Every test runs against each server, 2 worker processes each (1 for the dev
server): request API, errors (500 logged once), streaming, sync and async
side by side, cancellation on the handler timeout and on client disconnect
(no task left on the worker loop), one loop per worker process.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from support.gunicorn import GunicornServer
from support.servers import UwsgiServer, WebminiRunProcess, http_get

APP = '''
import asyncio
import os
import time
from pathlib import Path

import gevent

import webmini as web
from webmini.serving import aio
from webmini.stores.sessions import CookieStore, Session

FLAGS = Path(os.environ["ASYNC_FLAGS"])
web.config.error_format = "auto"
web.config.max_blocking_time = 0.1  # the hub monitor, in every worker


def flag(name):
    (FLAGS / name).write_text(str(os.getpid()))


class Hello:
    async def GET(self):
        await asyncio.sleep(0.01)
        web.header("X-Path", web.ctx.path)
        return {"hello": web.input(name="world").name, "pid": os.getpid(),
                "loop": id(asyncio.get_running_loop())}

    async def POST(self):
        await asyncio.sleep(0)
        return {"form": dict(web.input()), "length": len(web.data())}


class Boom:
    async def GET(self):
        await asyncio.sleep(0)
        raise ValueError("async boom " + web.input(tag="").tag)


class Missing:
    async def GET(self):
        raise web.notfound()


class Stream:
    async def GET(self):
        for i in range(3):
            await asyncio.sleep(0.01)
            yield "chunk%d;" % i


class Hold:
    async def GET(self):
        tag = web.input(tag="").tag
        flag("started-" + tag)
        while not (FLAGS / ("release-" + tag)).exists():
            await asyncio.sleep(0.01)
        return "held async"


class SyncHold:
    def GET(self):
        tag = web.input(tag="").tag
        flag("started-" + tag)
        while not (FLAGS / ("release-" + tag)).exists():
            gevent.sleep(0.01)
        return "held sync"


class Slow:
    timeout = 0.3

    async def GET(self):
        tag = web.input(tag="").tag
        flag("started-" + tag)
        try:
            await asyncio.sleep(30)
        finally:
            flag("finally-" + tag)


class Forever:
    async def GET(self):
        tag = web.input(tag="").tag
        flag("started-" + tag)
        try:
            await asyncio.sleep(60)
        finally:
            flag("finally-" + tag)


class Moved:
    async def GET(self):
        await asyncio.sleep(0)
        raise web.seeother("/?name=moved")


class Count:
    async def GET(self):
        await asyncio.sleep(0)
        session.count += 1
        return {"count": session.count}


class Spin:
    async def GET(self):
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:  # CPU inside a coroutine: holds the hub
            pass
        return "spun"


class Tasks:
    def GET(self):
        return {"pid": os.getpid(), "tasks": len(aio.tasks())}


urls = ("/", "Hello", "/boom", "Boom", "/missing", "Missing", "/stream", "Stream",
        "/hold", "Hold", "/synchold", "SyncHold", "/slow", "Slow",
        "/forever", "Forever", "/tasks", "Tasks", "/moved", "Moved", "/count", "Count",
        "/spin", "Spin")
app = web.application(urls, globals())
session = Session(app, CookieStore(), initializer={"count": 0}, secret="s" * 32)
application = app.wsgifunc()
'''

SERVERS = ("devserver", "uwsgi", "gunicorn")


class Running:
    """One server of the three serving the app above, with a common face for the tests."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.flags = workdir / "flags"
        self.flags.mkdir()
        (workdir / "asyncapp.py").write_text(APP)
        env = {"ASYNC_FLAGS": str(self.flags), "PYTHONPATH": str(workdir)}
        self.server: Any
        if kind == "devserver":
            self.server = WebminiRunProcess(["asyncapp:app"], workdir, env=env)
            self.port = self.server.port
            self.workers = 1
        elif kind == "uwsgi":
            self.server = UwsgiServer(workdir / "uwsgi", module="asyncapp:application",
                                      processes=2, env=env).start()
            self.port = self.server.http_port
            self.workers = 2
        else:
            self.server = GunicornServer(workdir / "gunicorn", module="asyncapp:application",
                                         processes=2, env=env, pythonpath=[workdir]).start()
            self.port = self.server.port
            self.workers = 2

    def get(self, path: str, **kw: Any) -> Any:
        """One request on a new connection."""
        return http_get(self.port, path, timeout=20, **kw)

    def log(self) -> str:
        """The server's output so far."""
        if self.kind == "devserver":
            return str(self.server.output())
        if self.kind == "uwsgi":
            return str(self.server.log_text())
        return str(self.server.log_tail(10**7))

    def stop(self) -> None:
        """Stop the server."""
        self.server.stop()

    def wait_flag(self, name: str, timeout: float = 15.0) -> bool:
        """Wait (bounded) until the app wrote flag ``name``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.flags / name).exists():
                return True
            gevent.sleep(0.05)
        return False

    def no_task_left(self) -> None:
        """Every worker answers /tasks with no coroutine running on its loop."""
        seen: dict[int, int] = {}
        # Bursts of concurrent requests: which worker accepts a connection is the
        # kernel's choice, and one-at-a-time requests may all reach the same one.
        for _ in range(60):
            burst = [gevent.spawn(self.get, "/tasks") for _ in range(4)]
            gevent.joinall(burst, raise_error=True)
            for job in burst:
                reply = job.value.json()
                seen[reply["pid"]] = reply["tasks"]
            if len(seen) >= self.workers and not any(seen.values()):
                return
            gevent.sleep(0.05)
        raise AssertionError(f"tasks left on the worker loops: {seen}")


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Running]:
    if request.param == "uwsgi":
        request.applymarker(pytest.mark.uwsgi)
    elif request.param == "gunicorn":
        request.applymarker(pytest.mark.gunicorn)
    running = Running(request.param, tmp_path_factory.mktemp(f"async-{request.param}"))
    try:
        yield running
    finally:
        running.stop()


def test_request_api_and_one_loop_per_worker(server: Running) -> None:
    loops: dict[int, set[int]] = {}
    for i in range(20):
        r = server.get(f"/?name=n{i}")
        assert r.status == 200 and r.headers["x-path"] == "/"
        data = r.json()
        assert data["hello"] == f"n{i}"
        loops.setdefault(data["pid"], set()).add(data["loop"])
    assert all(len(ids) == 1 for ids in loops.values()), loops
    body = b"a=1&b=" + b"x" * 5000
    r = server.get("/", method="POST", body=body,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200
    assert r.json() == {"form": {"a": "1", "b": "x" * 5000}, "length": len(body)}


def test_errors_follow_the_normal_path(server: Running) -> None:
    r = server.get("/boom?tag=once-" + server.kind, headers={"Accept": "application/json"})
    assert r.status == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 500
    assert server.get("/missing").status == 404
    deadline = time.monotonic() + 10
    while "async boom once-" not in server.log() and time.monotonic() < deadline:
        gevent.sleep(0.05)
    log = server.log()
    assert log.count("unhandled error in GET /boom") == 1, log[-3000:]
    assert log.count("ValueError: async boom once-" + server.kind) == 1


def test_redirects_and_sessions(server: Running) -> None:
    r = server.get("/moved")
    assert (r.status, r.headers["location"]) == (303, "/?name=moved")
    cookie = ""
    counts = []
    for _ in range(3):
        r = server.get("/count", headers={"Cookie": cookie} if cookie else {})
        counts.append(r.json()["count"])
        cookie = r.headers.get("set-cookie", cookie).split(";")[0] or cookie
    assert counts == [1, 2, 3]


def test_hub_monitor_names_the_async_handler(server: Running) -> None:
    assert server.get("/spin").body == b"spun"
    wanted = "GET /spin in asyncapp.Spin.GET blocked the event loop for"
    deadline = time.monotonic() + 10
    while wanted not in server.log() and time.monotonic() < deadline:
        gevent.sleep(0.05)
    assert wanted in server.log(), server.log()[-3000:]


def test_async_generator_streams(server: Running) -> None:
    r = server.get("/stream")
    assert (r.status, r.body) == (200, b"chunk0;chunk1;chunk2;")


def _served_by(server: Running, pid: int, path: str) -> Any:
    """Ask ``path`` until the worker ``pid`` answers; return its reply."""
    for _ in range(200):
        reply = server.get(path)
        if reply.json()["pid"] == pid:
            return reply
    raise AssertionError(f"worker {pid} never answered {path}")


@pytest.mark.parametrize("holder", ["/hold", "/synchold"])
def test_sync_and_async_served_while_the_other_waits(server: Running, holder: str) -> None:
    tag = f"{holder[1:]}-{server.kind}"
    held = gevent.spawn(server.get, f"{holder}?tag={tag}")
    assert server.wait_flag(f"started-{tag}")
    pid = int((server.flags / f"started-{tag}").read_text())
    if holder == "/hold":  # a coroutine waits: a sync handler of its worker answers
        assert _served_by(server, pid, "/tasks").json()["tasks"] == 1
    else:  # a sync handler waits: a coroutine of its worker answers
        assert _served_by(server, pid, "/?name=meanwhile").json()["hello"] == "meanwhile"
    assert not held.ready()
    (server.flags / f"release-{tag}").write_text("")
    assert held.get(timeout=20).body == f"held {'async' if holder == '/hold' else 'sync'}".encode()


def test_timeout_cancels_the_coroutine(server: Running) -> None:
    tag = "timeout-" + server.kind
    r = server.get(f"/slow?tag={tag}")
    assert r.status == 504
    # Answered once the coroutine unwound: its finally ran already.
    assert (server.flags / f"started-{tag}").exists()
    assert (server.flags / f"finally-{tag}").exists()
    server.no_task_left()


def test_client_disconnect_cancels_the_task(server: Running) -> None:
    tag = "gone-" + server.kind
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(f"GET /forever?tag={tag} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert server.wait_flag(f"started-{tag}")
    sock.close()
    assert server.wait_flag(f"finally-{tag}"), "the task outlived its client"
    server.no_task_left()


def test_many_concurrent_async_requests(server: Running) -> None:
    greenlets = [gevent.spawn(server.get, f"/?name={i}") for i in range(300)]
    gevent.joinall(greenlets, raise_error=True)
    assert [g.value.json()["hello"] for g in greenlets] == [str(i) for i in range(300)]
