"""Responses: body kinds, headers, cookies, errors, streaming, processors."""

import datetime
import logging
import os
import tempfile

import pytest

import webmini as web
from webmini.testing import Browser, TestClient

events = []


class Kinds:
    def GET(self, kind):
        if kind == "str":
            return "héllo"
        if kind == "bytes":
            return b"raw"
        if kind == "dict":
            return {"when": datetime.date(2026, 1, 2), "n": 1}
        if kind == "list":
            return [1, "two"]
        if kind == "none":
            return None
        if kind == "gen":
            web.header("Content-Type", "text/plain")

            def gen():
                web.header("X-Too-Late", "never")  # headers set before the first yield count
                yield "a"
                yield b"b"
                yield "c"

            return gen()
        if kind == "file":
            f = tempfile.TemporaryFile()
            f.write(b"0123456789")
            f.seek(0)
            return f
        if kind == "nocontent":
            raise web.nocontent()
        if kind == "created":
            web.header("Location", "/x/1")
            raise web.created("made")
        raise web.notfound()


class Streams:
    def GET(self, kind):
        if kind == "early":
            def early():
                raise ValueError("before first chunk")
                yield "x"  # pragma: no cover
            return early()

        def late():
            yield "first"
            raise ValueError("inside the stream")

        return late()


class Boom:
    def GET(self):
        raise KeyError("secret detail")


class BadHeader:
    def GET(self, which):
        if which == "crlf":
            web.header("X-Evil", "a\r\nSet-Cookie: pwned=1")
        elif which == "nul":
            web.header("X-Evil", "a\x00b")
        elif which == "name":
            web.header("Bad Name", "x")
        elif which == "redirect":
            raise web.seeother("/x\r\nSet-Cookie: pwned=1")
        return "unreachable"


class Cookie:
    def GET(self):
        web.setcookie("sid", "a b;c", secure=True, httponly=True, samesite="Strict",
                      max_age=60, path="/p", domain="example.com")
        web.setcookie("gone", "", expires=-1)
        return "ok"


class Login:
    def POST(self):
        web.setcookie("user", web.input().user)
        raise web.seeother("/whoami")


class WhoAmI:
    def GET(self):
        return web.cookies(user="nobody").user


class Modified:
    def GET(self):
        web.modified(etag="v1")
        return "fresh"


class Returned:
    def GET(self):
        return web.forbidden("no")


urls = (
    "/k/(\\w+)", "Kinds", "/s/(\\w+)", "Streams", "/boom", "Boom", "/bad/(\\w+)", "BadHeader",
    "/cookie", "Cookie", "/login", "Login", "/whoami", "WhoAmI", "/modified", "Modified",
    "/returned", "Returned",
)
app = web.application(urls, globals())
app.add_processor(web.loadhook(lambda: events.append("load")))
app.add_processor(web.unloadhook(lambda: events.append("unload")))
client = TestClient(app)


def test_str_bytes_json_none_bodies_have_type_and_length():
    r = client.get("/k/str")
    assert r.text == "héllo" and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Length"] == str(len("héllo".encode()))
    assert client.get("/k/bytes").body == b"raw"
    r = client.get("/k/dict")
    assert r.json() == {"when": "2026-01-02", "n": 1}
    assert r.headers["Content-Type"] == "application/json"
    assert client.get("/k/list").json() == [1, "two"]
    r = client.get("/k/none")
    assert r.body == b"" and r.headers["Content-Length"] == "0"


def test_generator_is_streamed_without_length():
    r = client.get("/k/gen")
    assert r.body == b"abc" and "Content-Length" not in r.headers
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["X-Too-Late"] == "never"


def test_file_is_sent_with_length():
    r = client.get("/k/file")
    assert r.body == b"0123456789" and r.headers["Content-Length"] == "10"


def test_no_body_and_no_length_on_204_304_head():
    r = client.get("/k/nocontent")
    assert r.status_code == 204 and r.body == b""
    assert "Content-Length" not in r.headers and "Content-Type" not in r.headers
    r = client.get("/modified", headers={"If-None-Match": '"v1"'})
    assert r.status_code == 304 and r.body == b"" and "Content-Length" not in r.headers
    assert r.headers["ETag"] == '"v1"'
    assert client.get("/modified").text == "fresh"
    r = client.head("/k/dict")
    # HEAD: no body, the Content-Length of the GET (as Flask sends it).
    assert r.status_code == 200 and r.body == b""
    assert r.headers["Content-Length"] == client.get("/k/dict").headers["Content-Length"]


def test_created_keeps_headers_set_before_raising():
    r = client.get("/k/created")
    assert r.status_code == 201 and r.text == "made" and r.headers["Location"] == "/x/1"


def test_unhandled_exception_is_plain_500_logged_with_traceback(caplog):
    with caplog.at_level(logging.ERROR, logger="webmini"):
        r = client.get("/boom")
    assert r.status_code == 500
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "secret detail" not in r.text and "Traceback" not in r.text
    assert any(rec.exc_info and "secret detail" in str(rec.exc_info[1]) for rec in caplog.records)


def test_debug_page_only_when_asked(monkeypatch):
    assert web.config.debug is False
    monkeypatch.setitem(web.config, "debug", True)
    r = client.get("/boom")
    assert r.status_code == 500 and "secret detail" in r.text


def test_custom_internalerror():
    a = web.application(("/boom", Boom), {})
    a.internalerror = lambda: web.internalerror("custom oops")
    assert TestClient(a).get("/boom").text == "custom oops"


def test_exception_before_first_chunk_is_a_clean_500():
    events.clear()
    r = client.get("/s/early")
    assert r.status_code == 500
    assert events == ["load", "unload"]


def test_exception_inside_stream_reaches_internalerror_and_unloadhooks(caplog):
    seen = []
    a = web.application(("/s/(\\w+)", Streams), {})
    a.internalerror = lambda: seen.append("internalerror") or web.internalerror()
    a.add_processor(web.unloadhook(lambda: seen.append("unload")))
    with caplog.at_level(logging.ERROR, logger="webmini"), pytest.raises(ValueError):
        TestClient(a).get("/s/late")
    assert seen == ["unload", "internalerror"]
    assert any("streaming" in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize("which", ["crlf", "nul", "name", "redirect"])
def test_header_injection_is_refused(which):
    r = client.get(f"/bad/{which}")
    # A redirect target is the request's to choose: a bad one is a 400.
    assert r.status_code == (400 if which == "redirect" else 500)
    assert all("pwned" not in v for _, v in r.header_items)


def test_setcookie_attributes():
    r = client.get("/cookie")
    first, second = r.headers.get_all("Set-Cookie")
    assert first == ("sid=a%20b%3Bc; Max-Age=60; Domain=example.com; Path=/p; Secure; "
                     "HttpOnly; SameSite=Strict")
    assert second.startswith("gone=; Expires=Thu, 01 Jan 1970") and "Max-Age=0" in second


def test_browser_keeps_cookies_across_redirect():
    b = Browser(app)
    r = b.post("/login", data={"user": "ann"})
    assert r.status_code == 303 and r.headers["Location"] == "/whoami"
    assert b.get("/whoami").text == "ann"


def test_returned_httperror_is_used_like_a_raised_one():
    r = client.get("/returned")
    assert (r.status_code, r.text) == (403, "no")


def test_processors_run_around_every_request():
    events.clear()
    client.get("/k/str")
    client.get("/boom")
    assert events == ["load", "unload", "load", "unload"]


def test_processor_can_short_circuit():
    a = web.application(("/k/(\\w+)", Kinds), {})

    def auth(handler):
        if web.ctx.env.get("HTTP_AUTHORIZATION") != "ok":
            raise web.unauthorized()
        return handler()

    a.add_processor(auth)
    c = TestClient(a)
    assert c.get("/k/str").status_code == 401
    assert c.get("/k/str", headers={"Authorization": "ok"}).status_code == 200


def test_app_request_like_webpy():
    r = app.request("/k/dict")
    assert r.status == "200 OK" and r.headers["Content-Type"] == "application/json"
    assert b'"n":1' in r.data
    r = app.request("/login", method="POST", data={"user": "x"})
    assert r.status.startswith("303")


def test_wsgifunc_applies_middleware(monkeypatch):
    def mw(inner):
        def wrapped(environ, start_response):
            environ["HTTP_AUTHORIZATION"] = "added"
            return inner(environ, start_response)
        return wrapped

    assert callable(app.wsgifunc(mw))
    # the app's own _serve: it records the access line itself (webmini.logs.AccessLine)
    assert app.wsgifunc() == app._serve and app._access_ids is not None
    monkeypatch.setitem(web.config, "access_log", False)
    assert app.wsgifunc() == app._serve  # the app itself, as a bound method


def test_large_file_streams_in_chunks():
    f = tempfile.NamedTemporaryFile(delete=False)
    f.write(os.urandom(300_000))
    f.close()
    ns = {"F": type("F", (), {"GET": lambda self: open(f.name, "rb")})}
    r = TestClient(web.application(("/f", "F"), ns)).get("/f")
    with open(f.name, "rb") as check:
        assert r.body == check.read()
    os.unlink(f.name)
