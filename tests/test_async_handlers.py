"""``async def`` handlers in process: the same request API as sync handlers, one loop per worker.

(The same behaviour through the dev server, uWSGI and gunicorn: tests/test_async_servers.py.)
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIServer
from support.servers import http_get

import webmini as web
from webmini.serving import aio, green
from webmini.serving.devserver import make_server
from webmini.stores.sessions import CookieStore, Session
from webmini.testing import Browser

events: list[str] = []
marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="")


class Hello:
    async def GET(self) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        web.header("X-Path", web.ctx.path)
        i = web.input(name="world")
        return {"hello": i.name, "method": web.ctx.method, "home": web.ctx.home}

    async def POST(self) -> dict[str, Any]:
        return {"data": web.data().decode(), "form": dict(web.input())}


class Created:
    async def GET(self) -> Any:
        return "made", 201, {"X-Made": "yes"}


class Missing:
    async def GET(self) -> None:
        await asyncio.sleep(0)
        raise web.notfound("no such thing")


class Moved:
    async def GET(self) -> None:
        raise web.seeother("/hello")


class Boom:
    async def GET(self) -> None:
        await asyncio.sleep(0)
        raise ValueError("async boom")


class Stream:
    async def GET(self) -> Any:
        web.header("Content-Type", "text/plain")
        for i in range(3):
            await asyncio.sleep(0.001)
            yield f"chunk{i};"


class StreamReturned:
    async def GET(self) -> Any:
        async def chunks() -> Any:
            yield "a"
            yield b"b"

        return chunks()


class Gathered:
    async def GET(self) -> dict[str, Any]:
        async def twice(x: int) -> int:
            await asyncio.sleep(0.01)
            return 2 * x

        task = asyncio.create_task(twice(5))
        results = await asyncio.gather(twice(1), twice(2))
        return {"gathered": results, "task": await task}


class Isolated:
    async def GET(self, n: str) -> dict[str, Any]:
        web.ctx.mine = n
        marker.set(n)
        await asyncio.sleep(0.05)
        await asyncio.sleep(0)
        return {"n": n, "ctx": web.ctx.mine, "var": marker.get(), "path": web.ctx.path,
                "q": web.input(q="").q}


class Slow:
    timeout = 0.2

    async def GET(self) -> str:
        events.append("started")
        try:
            await asyncio.sleep(30)
        finally:
            events.append("finally")
        return "never"


class SyncNap:
    def GET(self) -> str:
        gevent.sleep(0.2)
        events.append("sync done")
        return "sync"


class AsyncNap:
    async def GET(self) -> str:
        await asyncio.sleep(0.2)
        events.append("async done")
        return "async"


class Spin:
    async def GET(self) -> str:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:  # CPU-bound inside a coroutine: holds the hub
            pass
        return "spun"


class Nested:
    async def GET(self) -> str:
        try:
            aio.run(asyncio.sleep(0))
        except RuntimeError as exc:
            return str(exc)
        return "no error"


class SyncCallsAsync:
    def GET(self) -> dict[str, Any]:
        async def where() -> str:
            await asyncio.sleep(0)
            return web.ctx.path

        return {"path": aio.run(where())}


class SyncAsyncioRun:
    def GET(self) -> str:
        # The worker loop idles in the hub meanwhile: no loop is "running" here.
        return asyncio.run(asyncio.sleep(0, result="own loop"))


class Tasks:
    def GET(self) -> dict[str, Any]:
        return {"tasks": len(aio.tasks()), "pid": os.getpid()}


async def plain_function(name: str) -> str:
    await asyncio.sleep(0)
    return f"function {name} {web.ctx.path}"


urls = (
    "/hello", "Hello",
    "/created", "Created",
    "/missing", "Missing",
    "/moved", "Moved",
    "/boom", "Boom",
    "/stream", "Stream",
    "/stream2", "StreamReturned",
    "/gathered", "Gathered",
    r"/isolated/(\d+)", "Isolated",
    "/slow", "Slow",
    "/syncnap", "SyncNap",
    "/asyncnap", "AsyncNap",
    "/spin", "Spin",
    "/nested", "Nested",
    "/sync-calls-async", "SyncCallsAsync",
    "/asyncio-run", "SyncAsyncioRun",
    "/tasks", "Tasks",
    "/f/(.*)", plain_function,
)
app = web.application(urls, globals())


@pytest.fixture(autouse=True)
def _clear() -> Iterator[None]:
    events.clear()
    yield
    events.clear()


def test_request_api_inside_async_handler() -> None:
    r = app.request("/hello?name=async")
    assert r.status == "200 OK"
    assert json.loads(r.data) == {"hello": "async", "method": "GET", "home": "http://0.0.0.0:8080"}
    assert r.headers["X-Path"] == "/hello"
    r = app.request("/hello", method="POST", data="a=1&b=2")
    assert json.loads(r.data) == {"data": "a=1&b=2", "form": {"a": "1", "b": "2"}}


def test_results_errors_and_redirects_as_in_sync_handlers(caplog: pytest.LogCaptureFixture) -> None:
    r = app.request("/created")
    assert (r.status, r.data, r.headers["X-Made"]) == ("201 Created", b"made", "yes")
    r = app.request("/missing")
    assert (r.status, r.data) == ("404 Not Found", b"no such thing")
    r = app.request("/moved")
    assert r.status == "303 See Other" and r.headers["Location"] == "/hello"
    with caplog.at_level(logging.ERROR):
        r = app.request("/boom")
    assert r.status == "500 Internal Server Error"
    logged = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(logged) == 1 and "GET /boom" in logged[0].getMessage()
    assert "async boom" in str(logged[0].exc_info[1])
    r = app.request("/head-less")
    assert r.status == "404 Not Found"
    r = app.request("/hello", method="HEAD")  # HEAD falls back to the async GET
    assert (r.status, r.data) == ("200 OK", b"")


def test_problem_details_body_for_an_async_error() -> None:
    web.config.error_format = "json"
    try:
        r = app.request("/boom")
    finally:
        web.config.error_format = "text"
    assert r.status == "500 Internal Server Error"
    assert r.headers["Content-Type"] == "application/problem+json"
    assert json.loads(r.data)["status"] == 500


def test_async_generators_stream() -> None:
    r = app.request("/stream")
    assert (r.status, r.data) == ("200 OK", b"chunk0;chunk1;chunk2;")
    assert r.headers["Content-Type"] == "text/plain"
    assert app.request("/stream2").data == b"ab"


def test_gather_tasks_and_callable_targets() -> None:
    assert json.loads(app.request("/gathered").data) == {"gathered": [2, 4], "task": 10}
    assert app.request("/f/x").data == b"function x /f/x"
    assert aio.tasks() == set()


def test_ctx_isolated_across_1000_concurrent_coroutines() -> None:
    greenlets = [gevent.spawn(app.request, f"/isolated/{i}?q={i}") for i in range(1000)]
    gevent.joinall(greenlets, raise_error=True)
    for i, g in enumerate(greenlets):
        n = str(i)
        assert json.loads(g.value.data) == {"n": n, "ctx": n, "var": n,
                                            "path": f"/isolated/{n}", "q": n}
    assert aio.tasks() == set()


def test_timeout_cancels_the_coroutine_and_its_finally_runs() -> None:
    r = app.request("/slow")
    assert r.status == "504 Gateway Timeout"
    # The request answered after the coroutine unwound.
    assert events == ["started", "finally"]
    assert aio.tasks() == set()


def test_killing_the_waiting_greenlet_cancels_the_task() -> None:
    slow = gevent.spawn(aio.run, _forever())
    gevent.sleep(0.05)
    assert len(aio.tasks()) == 1
    slow.kill()
    assert aio.tasks() == set()
    assert events == ["forever started", "forever finally"]


async def _forever() -> None:
    events.append("forever started")
    try:
        await asyncio.sleep(60)
    finally:
        events.append("forever finally")


def test_sync_and_async_handlers_wait_side_by_side() -> None:
    greenlets = [gevent.spawn(app.request, path) for path in ("/syncnap", "/asyncnap") * 50]
    gevent.joinall(greenlets, raise_error=True)
    assert sorted(events) == ["async done"] * 50 + ["sync done"] * 50
    assert {g.value.data for g in greenlets} == {b"sync", b"async"}


def test_sync_code_runs_a_coroutine_and_asyncio_run_still_works() -> None:
    assert json.loads(app.request("/sync-calls-async").data) == {"path": "/sync-calls-async"}
    app.request("/hello")  # the worker loop exists and idles
    assert app.request("/asyncio-run").data == b"own loop"


def test_waiting_on_the_loop_from_the_loop_is_refused() -> None:
    assert b"await the coroutine instead" in app.request("/nested").data


def test_sessions_inside_async_handlers() -> None:
    sapp = web.application((), {})
    session = Session(sapp, CookieStore(), initializer={"count": 0}, secret="s" * 32)

    class Count:
        async def GET(self) -> dict[str, int]:
            await asyncio.sleep(0)
            session.count += 1
            return {"count": session.count}

    sapp.add_mapping("/count", Count)
    browser = Browser(sapp)
    assert [browser.get("/count").json()["count"] for _ in range(3)] == [1, 2, 3]


def test_sync_pool_call_from_a_coroutine(mariadb: Any) -> None:
    from webmini.stores.mysql import Database

    db = Database(**mariadb.params(), acquire_timeout=5.0)

    class Query:
        async def GET(self) -> dict[str, Any]:
            await asyncio.sleep(0)
            # A sync, gevent-friendly call: the loop's greenlet waits in the hub.
            row = db.query_one("SELECT SLEEP(0.1) AS s, %s AS n", (web.ctx.path,))
            return {"n": row.n if row else None}

    dapp = web.application(("/q", Query, "/nap", SyncNap), {})
    try:
        greenlets = [gevent.spawn(dapp.request, "/q"), gevent.spawn(dapp.request, "/nap")]
        gevent.joinall(greenlets, raise_error=True)
    finally:
        db.close()
    assert json.loads(greenlets[0].value.data) == {"n": "/q"}
    assert greenlets[1].value.data == b"sync"


def test_async_http_client_against_a_local_server() -> None:
    import aiohttp  # in the test dependency group: missing is a failure, not a skip

    def upstream(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        gevent.sleep(0.05)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    server = WSGIServer(("127.0.0.1", 0), upstream, log=None)
    server.start()

    class Fetch:
        async def GET(self) -> str:
            async with aiohttp.ClientSession() as s:
                texts = await asyncio.gather(*[
                    _text(s, f"http://127.0.0.1:{server.server_port}/{i}") for i in range(5)])
            return ",".join(texts)

    try:
        r = web.application(("/fetch", Fetch), {}).request("/fetch")
    finally:
        server.stop()
    assert (r.status, r.data) == ("200 OK", b"/0,/1,/2,/3,/4")


async def _text(session: Any, url: str) -> str:
    async with session.get(url) as resp:
        return str(await resp.text())


def test_hub_monitor_names_an_async_handler_that_blocks(caplog: pytest.LogCaptureFixture) -> None:
    server = make_server(app.wsgifunc(), ("127.0.0.1", 0))
    server.start()
    green.start_monitor(max_blocking_time=0.1)
    try:
        with caplog.at_level(logging.WARNING, logger="webmini.serving.green"):
            reply = http_get(server.server_port, "/spin")
            assert (reply.status, reply.body) == (200, b"spun")
            gevent.sleep(0.05)
    finally:
        green.stop_monitor()
        server.stop(timeout=1)
    reports = [r.getMessage() for r in caplog.records
               if "blocked the event loop for" in r.getMessage() and "/spin" in r.getMessage()]
    assert len(reports) == 1, [r.getMessage() for r in caplog.records]
    assert "GET /spin in test_async_handlers.Spin.GET" in reports[0], reports[0]


def test_a_forked_child_runs_its_own_loop() -> None:
    parent_loop = aio.get_loop()
    app.request("/hello")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            gevent.reinit()
            ok = aio.get_loop() is not parent_loop and app.request("/hello").status == "200 OK"
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 10) == b"ok"
    os.close(read)
    assert aio.get_loop() is parent_loop


def test_core_imports_neither_asyncio_nor_the_loop_for_sync_apps() -> None:
    code = textwrap.dedent("""
        import json, sys
        import webmini as web
        class H:
            def GET(self):
                return "x"
        app = web.application(("/", "H"), {"H": H})
        app.request("/")
        print(json.dumps(["asyncio" in sys.modules, "webmini.serving.aio" in sys.modules]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == [False, False]


def test_webmini_check_accepts_async_handlers(tmp_path: Any) -> None:
    (tmp_path / "asyncapp.py").write_text(textwrap.dedent("""
        import asyncio
        import webmini as web

        class Index:
            async def GET(self):
                await asyncio.sleep(0)
                return "ok"

        app = web.application(("/", "Index"), globals())
    """))
    out = subprocess.run([sys.executable, "-m", "webmini.cli", "check", "asyncapp:app"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 route(s) OK" in out.stdout
    assert "1 async def handler(s) (run on each worker's asyncio loop): Index.GET" in out.stdout


def test_loop_timers_order_cancel_and_wait_for() -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        seen: list[str] = []
        loop.call_later(0.03, seen.append, "late")
        loop.call_later(0.01, seen.append, "early")
        dropped = loop.call_later(0.02, seen.append, "cancelled")
        dropped.cancel()
        try:
            await asyncio.wait_for(asyncio.sleep(10), 0.05)
        except TimeoutError:
            seen.append("timed out")
        return seen

    assert aio.run(scenario()) == ["early", "late", "timed out"]


def test_sleep_never_returns_before_its_time() -> None:
    async def late_by() -> float:
        loop = asyncio.get_running_loop()
        worst = 0.0
        for _ in range(20):
            start = loop.time()
            await asyncio.sleep(0.005)
            worst = min(worst, loop.time() - start - 0.005)
        return worst

    busy = [gevent.spawn(aio.run, late_by()) for _ in range(20)]
    gevent.joinall(busy, raise_error=True)
    assert min(g.value for g in busy) >= 0.0


def test_async_loadhook_and_unloadhook() -> None:
    seen: list[str] = []

    async def before() -> None:
        await asyncio.sleep(0)
        seen.append("load " + web.ctx.path)

    async def after() -> None:
        await asyncio.sleep(0)
        seen.append("unload " + web.ctx.path)

    happ = web.application(("/h", Hello), {})
    happ.add_processor(web.loadhook(before))
    happ.add_processor(web.unloadhook(after))
    assert happ.request("/h").status == "200 OK"
    assert seen == ["load /h", "unload /h"]


def test_the_worker_loop_does_not_keep_the_hub_alive() -> None:
    code = textwrap.dedent("""
        from gevent import monkey; monkey.patch_all()
        import asyncio, gevent
        from webmini.serving import aio
        print(aio.run(asyncio.sleep(0.01, result="slept")))
        gevent.wait()  # returns once nothing but the idle loop is left
        print("hub done")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["slept", "hub", "done"], out.stderr
