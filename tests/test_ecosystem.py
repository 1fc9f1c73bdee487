"""webmini among WSGI tools: error reporters, route names, werkzeug's ProxyFix and
DispatcherMiddleware, HEAD answers under waitress and gevent.pywsgi (real packages)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIServer
from support import free_port
from support.failing import Boom, Div, Stream, serve_ws_and_fail
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

import webmini as web
from webmini.config import config
from webmini.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent


# -- the application ----------------------------------------------------------

class Ok:
    def GET(self) -> str:
        return "ok " + str(web.ctx.route)


class Item:
    def GET(self, n: str) -> dict[str, Any]:
        return {"item": n, "route": web.ctx.route}


class Where:
    def GET(self) -> dict[str, Any]:
        c = web.ctx
        return {"ip": c.ip, "protocol": c.protocol, "host": c.host,
                "remote": c.env["REMOTE_ADDR"], "homepath": c.homepath, "route": c.route}


api = web.application(("/items/([0-9]+)", Item, "/where", Where), {})


def make_app(processors: bool = False) -> web.application:
    app = web.application(("/ok", Ok, "/div/([0-9]+)", Div, "/stream", Stream, "/api", api,
                           "/where", Where, "/ws", Boom), {})
    if processors:
        app.add_processor(lambda handler: handler())
    return app


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The calls every error reporter gets, recorded."""
    seen: list[tuple[Any, ...]] = []

    def reporter(exc_info: Any, c: Any, stage: str) -> None:
        seen.append((exc_info[0], str(exc_info[1]), stage, c.route,
                     c.env.get("webmini.exception") is exc_info[1], c.method))

    monkeypatch.setitem(config, "error_reporters", [reporter])
    return seen


# -- 1. unhandled exceptions reach the reporters ------------------------------

@pytest.mark.parametrize("processors", [False, True])
def test_a_handler_exception_reaches_the_reporters_once(reports: list[Any],
                                                        processors: bool) -> None:
    r = TestClient(make_app(processors)).get("/div/0")
    assert r.status_code == 500
    assert reports == [(ZeroDivisionError, "integer division or modulo by zero", "request",
                        "/div/([0-9]+)", True, "GET")]


def test_a_streamed_body_exception_reaches_the_reporters(reports: list[Any]) -> None:
    with pytest.raises(KeyError):
        TestClient(make_app(), validate=False).get("/stream")
    assert reports == [(KeyError, "'lost mid-body'", "stream", "/stream", True, "GET")]


def test_a_websocket_event_exception_reaches_the_reporters(reports: list[Any]) -> None:
    serve_ws_and_fail(make_app().wsgifunc())
    # The request is over: its environ is the server's no more, so not told.
    assert reports == [(ValueError, "bad message 'hi'", "websocket", "/ws", False, "GET")]


def test_a_failing_reporter_never_changes_the_answer(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    def broken(exc_info: Any, c: Any, stage: str) -> None:
        raise RuntimeError("reporter down")

    monkeypatch.setitem(config, "error_reporters", [broken])
    with caplog.at_level(logging.ERROR, logger="webmini"):
        r = TestClient(make_app()).get("/div/0")
    assert r.status_code == 500
    assert "error reporter" in caplog.text and "unhandled error in GET /div/0" in caplog.text


def test_http_errors_are_answers_not_reported(reports: list[Any]) -> None:
    client = TestClient(make_app())
    assert client.get("/nowhere").status_code == 404
    assert client.get("/div/1").status_code == 200
    assert reports == []


@pytest.mark.parametrize("processors", [False, True])
def test_propagate_exceptions_raises_out_of_the_app_after_reporting(
        reports: list[Any], monkeypatch: pytest.MonkeyPatch, processors: bool) -> None:
    monkeypatch.setitem(config, "propagate_exceptions", True)
    app = make_app(processors).wsgifunc()
    with pytest.raises(ZeroDivisionError):
        TestClient(app, validate=False).get("/div/0")
    assert [r[2] for r in reports] == ["request"]  # reported once, then raised
    assert TestClient(app).get("/div/1").text == "1"


# -- 2. route names ----------------------------------------------------------

@pytest.mark.parametrize("processors", [False, True])
def test_ctx_route_is_the_matched_pattern_with_sub_app_prefixes(processors: bool) -> None:
    client = TestClient(make_app(processors))
    assert client.get("/ok").text == "ok /ok"
    assert client.get("/ok").text == "ok /ok"  # the static fast path, second time
    assert client.get("/api/items/7").json() == {"item": "7", "route": "/api/items/([0-9]+)"}
    assert client.get("/api/where").json()["route"] == "/api/where"


def test_ctx_route_is_none_without_a_match() -> None:
    seen: list[Any] = []
    app = make_app()

    def processor(handler: Any) -> Any:
        try:
            return handler()
        finally:
            seen.append(web.ctx.route)

    app.add_processor(processor)
    client = TestClient(app)
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/nothing").status_code == 404
    assert seen == [None, None]


# -- 3. ProxyFix and trusted_proxies ----------------------------------------

FORWARDED = {"X-Forwarded-For": "203.0.113.9, 10.0.0.5", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "shop.example"}


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(config, "trusted_proxies", "127.0.0.1, 10.0.0.0/8")


def where(wsgi: Any) -> dict[str, Any]:
    r = TestClient(wsgi).get("/where", headers=FORWARDED, env={"REMOTE_ADDR": "127.0.0.1"})
    assert r.status_code == 200
    return dict(r.json())


def test_trusted_proxies_alone_walk_the_forwarded_chain(trusted: None) -> None:
    got = where(make_app().wsgifunc())
    assert (got["ip"], got["protocol"], got["host"]) == ("203.0.113.9", "https", "shop.example")


def test_after_proxyfix_its_answer_is_believed_not_the_headers_again(trusted: None) -> None:
    got = where(ProxyFix(make_app().wsgifunc(), x_for=1, x_proto=1, x_host=1))
    assert got["remote"] == "10.0.0.5"  # ProxyFix took one hop
    assert (got["ip"], got["protocol"], got["host"]) == ("10.0.0.5", "https", "shop.example")


def test_proxyfix_that_ignores_a_header_is_not_overruled(trusted: None) -> None:
    # ProxyFix told to trust X-Forwarded-For only: the scheme and host stay the socket's.
    got = where(ProxyFix(make_app().wsgifunc(), x_for=1, x_proto=0, x_host=0))
    assert (got["ip"], got["protocol"], got["host"]) == ("10.0.0.5", "http", "localhost:8080")


# -- 5. the access line under DispatcherMiddleware ---------------------------

def test_access_line_has_the_mount_point(monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(config, "access_log", True)
    root = web.application(("/", Ok), {})
    dispatch = DispatcherMiddleware(root.wsgifunc(), {"/api": api.wsgifunc()})
    with caplog.at_level(logging.INFO, logger="webmini.access"):
        r = TestClient(dispatch).get("/api/where")
    assert r.json()["homepath"] == "/api" and r.json()["route"] == "/where"
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "webmini.access"]
    assert len(lines) == 1 and '"GET /api/where HTTP/1.1" 200' in lines[0], lines


# -- 4. HEAD under real servers ------------------------------------------------

HEAD_APP = textwrap.dedent('''
    import webmini as web

    class Text:
        def GET(self):
            return "hello, world"

    class Json:
        def GET(self):
            return {"a": [1, 2, 3]}

    class File:
        def GET(self):
            return open(__file__, "rb")

    class Missing:
        def GET(self):
            raise web.notfound("no such thing")

    app = web.application(("/text", Text, "/json", Json, "/file", File, "/missing", Missing),
                          globals())
    application = app.wsgifunc()
''')


def exchange(port: int, method: str, path: str) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 request on its own connection: status line, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, body


def check_head_like_get(port: int) -> None:
    for path in ("/text", "/json", "/file", "/missing"):
        status, got, body = exchange(port, "GET", path)
        head_status, head, head_body = exchange(port, "HEAD", path)
        assert head_status == status and head_body == b""
        assert "transfer-encoding" not in head, (path, head)
        assert head["content-length"] == got["content-length"] == str(len(body)), path


@pytest.fixture
def head_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "headapp.py").write_text(HEAD_APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_head_has_the_get_content_length_under_waitress(head_app: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import headapp, waitress; "
         f"waitress.serve(headapp.application, host='127.0.0.1', port={port}, _quiet=True)"],
        cwd=head_app, env={"PYTHONPATH": f"{head_app}:{ROOT}", "PATH": "/usr/bin:/bin"})
    try:
        wait_for_port(port, proc)
        check_head_like_get(port)
    finally:
        proc.terminate()
        proc.wait(10)


def test_head_has_the_get_content_length_under_gevent_pywsgi(head_app: Path) -> None:
    import headapp  # type: ignore[import-not-found]

    server = WSGIServer(("127.0.0.1", 0), headapp.application, log=None)
    server.start()
    try:
        check_head_like_get(server.server_port)
    finally:
        server.stop(timeout=2)


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the server listens (or fail if it exited)."""
    for _ in range(200):
        assert proc.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            gevent.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture(autouse=True)
def _no_leftover_reporters() -> Iterator[None]:
    yield
    assert json.dumps(config.get("propagate_exceptions")) == "false"
