"""The URL table: order, whole-path matching, targets, sub-apps, methods."""

import pytest

import webmini as web
from webmini.testing import TestClient


class Index:
    def GET(self):
        return "index"


class Post:
    def GET(self, uid, pid):
        return f"user {uid} post {pid}"


class Everything:
    def GET(self, rest):
        return "catch-all " + rest

    def POST(self, rest):
        return "posted"

    def PATCH(self, rest):
        return "patched"


class Options:
    def GET(self):
        return "x"

    def OPTIONS(self):
        web.header("Allow", "GET")
        return "custom options"


def greet(name):
    return "hi " + name


admin = web.application(
    ("", "AdminHome", "/", "AdminHome", "/users/(\\d+)", "AdminUser"),
    {
        "AdminHome": type("AdminHome", (), {"GET": lambda self: f"{web.ctx.homepath}|{web.ctx.path}"}),
        "AdminUser": type("AdminUser", (), {"GET": lambda self, uid: f"{web.ctx.home}|{uid}"}),
    },
)

urls = (
    "/", "Index",
    r"/users/(\d+)/posts/(\d+)", "Post",
    "/old/(.*)", r"redirect /new/\1",
    "/hello/(\\w+)", greet,
    "/admin", admin,
    "/shadow/(.*)", "Everything",
    "/shadow/static", "Index",
    "/opts", "Options",
    "/cls", Index,
    "/dotted", "tests.test_routing.Index",
)
app = web.application(urls, globals())
client = TestClient(app)


def test_static_and_parametric_routes():
    assert client.get("/").text == "index"
    assert client.get("/users/42/posts/7").text == "user 42 post 7"
    assert client.get("/cls").text == "index"
    assert client.get("/dotted").text == "index"


def test_regex_must_match_whole_path_even_with_trailing_newline():
    assert client.get("/", env={"PATH_INFO": "/users/1/posts/2\n"}).status_code == 404
    assert client.get("/users/1/posts/2/extra").status_code == 404
    assert client.get("/x/users/1/posts/2").status_code == 404


def test_first_match_in_table_order_wins_over_static_fast_path():
    # "/shadow/static" is a static route, but the regex above it wins.
    assert client.get("/shadow/static").text == "catch-all static"


def test_redirect_with_backrefs_keeps_query():
    r = client.get("/old/a/b?x=1&y=2")
    assert r.status_code == 301
    assert r.headers["Location"] == "/new/a/b?x=1&y=2"


def test_callable_target_gets_groups():
    assert client.get("/hello/bob").text == "hi bob"


def test_subapp_rewrites_home_and_path():
    assert client.get("/admin").text == "/admin|"
    assert client.get("/admin/").text == "/admin|/"
    assert client.get("/admin/users/5").text == "http://localhost:8080/admin|5"
    assert client.get("/admin/nothing").status_code == 404


def test_404_and_custom_notfound():
    assert client.get("/missing").status_code == 404
    custom = web.application(("/", "Index"), globals())
    custom.notfound = lambda: web.notfound("nothing here")
    r = TestClient(custom).get("/missing")
    assert (r.status_code, r.text) == (404, "nothing here")
    custom.notfound = lambda: "just a body"  # a plain body is a 404 with that body
    r = TestClient(custom).get("/missing")
    assert (r.status_code, r.text) == (404, "just a body")


def test_405_lists_exactly_the_class_methods():
    r = client.request("DELETE", "/shadow/x")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, POST, PATCH, OPTIONS"
    assert client.patch("/shadow/x").text == "patched"


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")
def test_unknown_or_dunder_methods_are_refused():
    assert client.request("__INIT__", "/").status_code == 405
    assert client.request("FOO", "/").status_code == 405


def test_head_is_get_without_body():
    r = client.head("/users/1/posts/2")
    assert r.status_code == 200 and r.body == b""
    # The Content-Length a GET has (as Flask sends), so servers do not chunk it.
    assert r.headers["Content-Length"] == client.get("/users/1/posts/2").headers["Content-Length"]


def test_options_answered_automatically_and_overridable():
    r = client.options("/users/1/posts/2")
    assert r.status_code == 200 and r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/opts").text == "custom options"


def test_class_names_are_resolved_once():
    table = {"Late": Index}
    late = web.application(("/", "Late"), table)
    assert TestClient(late).get("/").text == "index"
    del table["Late"]  # resolved already: later changes to fvars don't matter
    assert TestClient(late).get("/").text == "index"


def test_class_defined_after_application_is_found():
    ns = {}
    late = web.application(("/", "Later"), ns)
    ns["Later"] = type("Later", (), {"GET": lambda self: "later"})
    assert TestClient(late).get("/").text == "later"


def test_add_mapping():
    a = web.application((), {})
    a.add_mapping("/added", Index)
    assert TestClient(a).get("/added").text == "index"


def test_duplicate_named_groups_fall_back_to_sequential_matching():
    class Named:
        def GET(self, x):
            return "named " + x

    a = web.application(("/a/(?P<x>\\d+)", Named, "/b/(?P<x>\\d+)", Named), {})
    assert TestClient(a).get("/b/3").text == "named 3"


def test_optional_groups_become_none():
    class Opt:
        def GET(self, a, b):
            return f"{a}-{b}"

    a = web.application(("/o/(\\d+)(?:/(\\d+))?", Opt, "/z", Index), {})
    assert TestClient(a).get("/o/1").text == "1-None"
    assert TestClient(a).get("/o/1/2").text == "1-2"


def test_routes_indexed_by_first_segment_keep_table_order():
    class A:
        def GET(self, x):
            return "A " + x

    class B:
        def GET(self, x):
            return "B " + x

    class C:
        def GET(self, *args):
            return "C " + "/".join(a or "-" for a in args)

    a = web.application((
        "/(\\w+)/special", A,          # may match under any first segment
        "/users/(\\w+)", B,            # only under /users/
        "/user(s)?/x/(\\w+)", C,       # optional character: any segment
        "/items/(\\d+)", B,
        "/(.*)", C,
    ), {})
    c = TestClient(a)
    assert c.get("/users/special").text == "A users"   # the earlier wildcard wins
    assert c.get("/users/ann").text == "B ann"
    assert c.get("/user/x/y").text == "C -/y"
    assert c.get("/users/x/y").text == "C s/y"
    assert c.get("/items/5").text == "B 5"
    assert c.get("/items/five").text == "C items/five"
    assert c.get("/elsewhere").text == "C elsewhere"
    assert c.get("/").text == "C -"


def test_segment_keys():
    from webmini.routing import Route, segment_key

    def key(p):
        return segment_key(Route(p, "X", False))

    assert key("/users/(\\d+)") == "users"
    assert key("/users/(\\d+)/posts/(\\d+)") == "users"
    assert key("/(.*)") is None
    assert key("/users?/(\\d+)") is None
    assert key("/users(\\d+)") is None
    assert key("/a/b|/c/d") is None
    assert key("(?i)/users/(\\d+)") is None
    assert key("^/users/(\\d+)$") is None
