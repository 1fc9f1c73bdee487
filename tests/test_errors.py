"""Error classes, status lines and the per-request context's declared state."""

import inspect

import pytest

import webmini as web
from webmini import errors, headers
from webmini.testing import TestClient


def test_reason_phrases_come_from_http_status():
    assert headers.status_line(418) == "418 I'm a Teapot"
    assert headers.status_line(404) == "404 Not Found"
    assert headers.status_line(599) == "599 Unknown"
    assert web.HTTPError(418).status == "418 I'm a Teapot"
    with pytest.raises(ValueError):
        headers.status_line(42)


def test_status_strings_cannot_split_the_status_line():
    assert headers.as_status("201") == "201 Created"
    assert headers.as_status("299 Custom") == "299 Custom"
    for bad in ("200 OK\r\nX-A: 1", "abc", "20", True):
        with pytest.raises(ValueError):
            headers.as_status(bad)


def test_error_classes_are_real_classes_with_their_own_docs():
    names = [n for n, v in vars(errors).items()
             if isinstance(v, type) and issubclass(v, web.HTTPError) and not n.startswith("_") and v is not web.HTTPError]
    for name in names:
        cls = getattr(errors, name)
        assert cls.__doc__ and str(cls.code) in cls.__doc__, name
        # Written out in the module, so IDEs and mypy see them.
        assert inspect.getsourcefile(cls).endswith("errors.py")
    assert web.NotFound().data == "not found"
    assert web.notfound("x").status == "404 Not Found"


def test_redirect_constructed_outside_a_request_resolves_when_sent():
    # Construction never reads the request context...
    early = web.seeother("/done")
    assert early.headers == [("Location", "/done")]

    class Later:
        def GET(self):
            raise early

    class Sub:
        def GET(self):
            raise web.found("/there")

    sub = web.application(("/x", "Sub"), locals())
    app = web.application(("/later", "Later", "/sub", sub), locals())
    client = TestClient(app)
    # ...the Location is resolved when the response is produced (relative:
    # a forged Host header cannot move it).
    r = client.get("/later")
    assert (r.status_code, r.headers["Location"]) == (303, "/done")
    r = client.get("/sub/x")
    assert (r.status_code, r.headers["Location"]) == (302, "/sub/there")
    with pytest.raises(ValueError):
        web.seeother("/x\r\nSet-Cookie: a=1")


def test_ctx_repr_shows_no_internal_state():
    seen = {}

    class Peek:
        def POST(self):
            web.input()
            web.cookies()
            web.data()
            web.ctx.mine = 1
            seen["repr"] = repr(web.ctx)
            c = web.ctx.get("parsed_form")
            seen["form"] = c
            return "ok"

    app = web.application(("/", "Peek"), locals())
    TestClient(app).post("/", data={"a": "1"}, headers={"Cookie": "k=v"})
    text = seen["repr"]
    assert "mine" in text and "'method': 'POST'" in text
    for internal in ("parsed", "_body", "_form", "_cookies", "in_override", "session_state"):
        assert internal not in text
    assert seen["form"] == ({"a": "1"}, {})


def test_sub_app_rebase_moves_prefix_from_path_to_home():
    seen = {}

    class Leaf:
        def GET(self):
            c = web.ctx
            seen.update(path=c.path, homepath=c.homepath, home=c.home, fullpath=c.fullpath,
                        stack=len(c.app_stack))
            return "ok"

    inner = web.application(("/leaf", "Leaf"), locals())
    outer = web.application(("/in", inner), locals())
    root = web.application(("/out", outer), locals())
    assert TestClient(root).get("/out/in/leaf?q=1").text == "ok"
    assert seen == {"path": "/leaf", "homepath": "/out/in",
                    "home": "http://localhost:8080/out/in", "fullpath": "/leaf?q=1", "stack": 3}
