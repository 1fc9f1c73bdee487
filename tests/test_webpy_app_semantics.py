"""Application behaviour web.py apps rely on (beyond the differential suite)."""

import pytest

import webmini as web
from webmini.testing import Browser, TestClient


def test_hasattr_ctx_outside_a_request_is_false():
    assert hasattr(web.ctx, "path") is False
    assert web.ctx.get("path", "none") == "none"
    with pytest.raises(RuntimeError, match="only available while a request"):
        web.ctx.path  # noqa: B018 - the message still explains


def test_setcookie_default_path_is_the_home_path():
    class c:
        def GET(self):
            web.setcookie("a", "1")
            web.setcookie("b", "2", path="/x")
            return ""

    app = web.application(("/c", "c"), locals())
    r = TestClient(app).get("/c", env={"SCRIPT_NAME": "/shop"})
    assert r.headers.get_all("Set-Cookie") == ["a=1; Path=/shop/", "b=2; Path=/x"]
    assert TestClient(app).get("/c").headers.get_all("Set-Cookie")[0] == "a=1; Path=/"


def test_changequery_keeps_repeated_parameters():
    class q:
        def GET(self):
            return web.changequery(page=2) + " " + web.changequery(tag=None)

    app = web.application(("/q", "q"), locals())
    assert TestClient(app).get("/q?tag=a&tag=b&page=1").text == "/q?tag=a&tag=b&page=2 /q?page=1"


def test_built_error_sets_the_response_only_when_dropped():
    class dropped:
        def GET(self):
            web.seeother("/elsewhere")
            return "body kept"

    class raised:
        def GET(self):
            web.header("X-Kept", "1")
            raise web.seeother("/there")

    class returned:
        def GET(self):
            return web.notfound("gone away")

    class built_then_fine:
        def GET(self):
            e = web.badrequest("just a value")
            return "fine " + str(e.status)

    urls = ("/dropped", "dropped", "/raised", "raised", "/returned", "returned")
    app = web.application(urls, locals())
    client = TestClient(app)
    r = client.get("/dropped")
    assert r.status == "303 See Other" and r.headers["Location"] == "/elsewhere"
    assert r.text == "body kept"
    r = client.get("/raised")
    assert r.status == "303 See Other" and r.headers.get_all("Location") == ["/there"]
    r = client.get("/returned")
    assert r.status == "404 Not Found" and r.text == "gone away"
    # Building an error object outside any request changes nothing anywhere.
    e = web.seeother("/x")
    assert e.status == "303 See Other"


def test_sub_app_inherits_notfound_and_internalerror():
    class boom:
        def GET(self):
            raise ValueError("x")

    class missing:
        def GET(self):
            raise web.notfound()

    sub = web.application(("/boom", "boom", "/missing", "missing"), locals())
    app = web.application(("/sub", sub), {})
    app.notfound = lambda: web.notfound("custom 404 at " + web.ctx.path)
    app.internalerror = lambda: web.internalerror("custom 500")
    client = TestClient(app)
    assert client.get("/sub/missing").text == "custom 404 at /missing"
    assert client.get("/sub/nothing").text == "custom 404 at /nothing"
    assert client.get("/sub/boom").text == "custom 500"
    sub.notfound = lambda: web.notfound("sub's own")
    assert client.get("/sub/nothing").text == "sub's own"


def test_parent_processor_sees_full_path_after_sub_app():
    seen = []

    def proc(handler):
        seen.append(("before", web.ctx.path, web.ctx.homepath))
        out = handler()
        seen.append(("after", web.ctx.path, web.ctx.homepath))
        return out

    class page:
        def GET(self):
            seen.append(("in", web.ctx.path, web.ctx.homepath))
            return "ok"

    sub = web.application(("/page", "page"), locals())
    app = web.application(("/sub", sub), {})
    app.add_processor(proc)
    assert TestClient(app).get("/sub/page").text == "ok"
    assert seen == [("before", "/sub/page", ""), ("in", "/page", "/sub"), ("after", "/sub/page", "")]


def test_processors_see_an_internal_error_raised():
    seen = []

    def proc(handler):
        try:
            return handler()
        except web.HTTPError as e:
            seen.append(e.status)
            raise

    class boom:
        def GET(self):
            raise ValueError("x")

    app = web.application(("/", "boom"), locals())
    app.add_processor(proc)
    r = TestClient(app).get("/")
    assert r.status_code == 500 and seen == ["500 Internal Server Error"]


def test_autodelegate_unknown_name_uses_notfound():
    class admin:
        GET = web.autodelegate("GET_")

        def GET_users(self):
            return "users"

    app = web.application(("/admin/(.*)", "admin"), locals())
    app.notfound = lambda: web.notfound("no such page")
    client = TestClient(app)
    assert client.get("/admin/users").text == "users"
    r = client.get("/admin/nope")
    assert r.status_code == 404 and r.text == "no such page"
    assert client.get("/admin/__class__").status_code == 404


def test_lowercase_method_is_405():
    class h:
        def GET(self):
            return "x"

        def get(self):
            return "never"

    app = web.application(("/", "h"), locals())
    r = TestClient(app, validate=False).request("get", "/", env={"REQUEST_METHOD": "get"})
    assert r.status_code == 405 and "never" not in r.text


def test_session_cookie_in_browser_round_trip(tmp_path):
    # The session's cookie path follows the home path too (web.py's default).
    from webmini.webpy.session import Session
    from webmini.webpy.session_stores import MemoryStore

    class count:
        def GET(self):
            s.n = s.get("n", 0) + 1
            return str(s.n)

    app = web.application(("/count", "count"), locals())
    s = Session(app, MemoryStore())
    b = Browser(app)
    r = b.get("/count", env={"SCRIPT_NAME": "/app"})
    assert "Path=/app/" in r.headers["Set-Cookie"]
    assert b.get("/count", env={"SCRIPT_NAME": "/app"}).text == "2"
