"""web.py names and behaviour: an app written for web.py runs by changing its import."""

import datetime

import webmini as web
from webmini.testing import TestClient

# --- a typical web.py application, unchanged but for the import -------------
urls = (
    "/", "index",
    "/hello/(.*)", "hello",
    "/info", "info",
    "/pages/(.*)", "pages",
    "/go", "go",
    "/query", "query",
    "/cached", "cached",
)


class index:
    def GET(self):
        return "Hello, world!"


class hello:
    def GET(self, name):
        i = web.input(times="1")
        web.header("X-Name", name)
        return ("Hello, " + (name or "nobody") + "! ") * int(i.times)


class info:
    def GET(self):
        c = web.ctx
        return web.storify({
            "path": c.path, "fullpath": c.fullpath, "query": c.query, "method": c.method,
            "ip": c.ip, "host": c.host, "home": c.home, "homepath": c.homepath,
            "homedomain": c.homedomain, "protocol": c.protocol, "status": c.status,
            "has_env": c.env is c.environ, "url": web.url("/x", a=1),
        })


class pages:
    GET = web.autodelegate("GET_")

    def GET_about(self):
        return "about"

    def GET_docs(self, rest):
        return "docs" + rest


class go:
    def GET(self):
        raise web.found("/hello/there")

    def POST(self):
        raise web.seeother("/")


class query:
    def GET(self):
        return web.changequery(page=2, drop=None)


class cached:
    def GET(self):
        web.expires(60)
        web.lastmodified(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
        return "cached"


app = web.application(urls, globals())
client = TestClient(app)


def test_hello_world():
    assert client.get("/").text == "Hello, world!"
    r = client.get("/hello/ann?times=2")
    assert r.text == "Hello, ann! Hello, ann! " and r.headers["X-Name"] == "ann"


def test_ctx_fields():
    r = client.get("/info?a=1", https=True)
    assert r.json() == {
        "path": "/info", "fullpath": "/info?a=1", "query": "?a=1", "method": "GET",
        "ip": "127.0.0.1", "host": "localhost:8080", "home": "https://localhost:8080",
        "homepath": "", "homedomain": "https://localhost:8080", "protocol": "https",
        "status": "200 OK", "has_env": True, "url": "/x?a=1",
    }


def test_autodelegate():
    assert client.get("/pages/about").text == "about"
    assert client.get("/pages/docs/intro").text == "docs/intro"
    assert client.get("/pages/missing").status_code == 404
    assert client.get("/pages/__init__").status_code == 404


def test_redirect_family():
    r = client.get("/go")
    assert r.status_code == 302 and r.headers["Location"] == "/hello/there"
    r = client.post("/go")
    assert r.status_code == 303
    for cls, code in [(web.redirect, 301), (web.found, 302), (web.seeother, 303),
                      (web.tempredirect, 307)]:
        assert cls("/x").status_code == code


def test_changequery():
    assert client.get("/query?drop=1&keep=2").text == "/query?keep=2&page=2"


def test_caching_headers():
    r = client.get("/cached")
    assert r.headers["Last-Modified"] == "Thu, 01 Jan 2026 00:00:00 GMT"
    assert r.headers["Expires"].endswith("GMT")


def test_status_names_exist_and_carry_codes():
    expected = {
        "badrequest": 400, "unauthorized": 401, "forbidden": 403, "notfound": 404,
        "nomethod": 405, "conflict": 409, "gone": 410, "internalerror": 500, "ok": 200,
        "created": 201, "accepted": 202, "nocontent": 204, "notmodified": 304,
    }
    for name, code in expected.items():
        assert getattr(web, name)().status_code == code, name
        assert isinstance(getattr(web, name)(), web.HTTPError)


def test_storage_and_storify():
    s = web.storage(a=1)
    assert s.a == 1 and s["a"] == 1
    assert web.storify({"a": ["1", "2"], "b": "x"}, c="d") == {"a": "2", "b": "x", "c": "d"}
    assert web.storify({"a": ["1", "2"]}, a=[]).a == ["1", "2"]


def test_config_defaults_are_safe():
    assert web.config.debug is False
    assert web.config.max_body_size > 0


def test_an_error_built_and_dropped_sets_the_status_as_in_webpy():
    class Sneaky:
        def GET(self):
            web.notfound()  # built, never raised nor returned: web.py answers 404
            return "fine"

    class Careful:
        def GET(self):
            try:
                raise web.notfound()
            except web.HTTPError:  # raised (and caught): no effect at all
                return "fine"

    r = TestClient(web.application(("/", Sneaky), {})).get("/")
    assert (r.status_code, r.text) == (404, "fine")
    r = TestClient(web.application(("/", Careful), {})).get("/")
    assert (r.status_code, r.text) == (200, "fine")
