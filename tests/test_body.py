"""What a handler's return value becomes: every kind of result, with and without an
unloadhook (which must wait for a streamed body), streamed and not."""

import io
import logging
import tempfile
from collections import OrderedDict

import pytest

import webmini as web
from webmini import body
from webmini.testing import TestClient, build_environ


class Html:
    """A template-like result: MarkupSafe's __html__ protocol."""

    def __html__(self):
        return "<p>caf\u00e9</p>"


class HtmlDict(dict):
    """web.py's TemplateResult is a dict subclass that also has __html__."""

    def __html__(self):
        return "<b>template</b>"


def chunks(*items):
    def gen():
        web.header("X-Streamed", "yes")
        yield from items

    return gen()


RESULTS = {
    "str": lambda: "caf\u00e9",
    "bytes": lambda: b"hello",
    "bytearray": lambda: bytearray(b"hello"),
    "memoryview": lambda: memoryview(b"hello"),
    "dict": lambda: {"a": 1},
    "list": lambda: [1, "x"],
    "ordereddict": lambda: OrderedDict(b=2),
    "storage": lambda: web.storage(c=3),
    "none": lambda: None,
    "html": lambda: Html(),
    "htmldict": lambda: HtmlDict(a=1),
    "gen_str": lambda: chunks("a", "b"),
    "gen_bytes_like": lambda: chunks(b"a", bytearray(b"b"), memoryview(b"c")),
    "iterator": lambda: iter([b"x", "y"]),
    "empty_gen": lambda: chunks(),
    "error": lambda: web.notfound("gone away"),
    "tuple2": lambda: ({"made": True}, 201),
    "tuple3": lambda: ("ok", "202 Accepted", {"X-Extra": "1"}),
    "tuple3_list": lambda: (b"t", 203, [("X-Extra", "2")]),
    "tuple_stream": lambda: (chunks("s", "t"), 206),
    "tuple_html": lambda: (Html(), 404),
}

# name -> (status, content type, body)
DEFAULT = web.config.default_content_type
EXPECTED = {
    "str": ("200 OK", DEFAULT, "caf\u00e9".encode()),
    "bytes": ("200 OK", DEFAULT, b"hello"),
    "bytearray": ("200 OK", DEFAULT, b"hello"),
    "memoryview": ("200 OK", DEFAULT, b"hello"),
    "dict": ("200 OK", "application/json", b'{"a":1}'),
    "list": ("200 OK", "application/json", b'[1,"x"]'),
    "ordereddict": ("200 OK", "application/json", b'{"b":2}'),
    "storage": ("200 OK", "application/json", b'{"c":3}'),
    "none": ("200 OK", DEFAULT, b""),
    "html": ("200 OK", "text/html; charset=utf-8", "<p>caf\u00e9</p>".encode()),
    "htmldict": ("200 OK", "text/html; charset=utf-8", b"<b>template</b>"),
    "gen_str": ("200 OK", DEFAULT, b"ab"),
    "gen_bytes_like": ("200 OK", DEFAULT, b"abc"),
    "iterator": ("200 OK", DEFAULT, b"xy"),
    "empty_gen": ("200 OK", DEFAULT, b""),
    "error": ("404 Not Found", "text/plain; charset=utf-8", b"gone away"),  # errors: plain text
    "tuple2": ("201 Created", "application/json", b'{"made":true}'),
    "tuple3": ("202 Accepted", DEFAULT, b"ok"),
    "tuple3_list": ("203 Non-Authoritative Information", DEFAULT, b"t"),
    "tuple_stream": ("206 Partial Content", DEFAULT, b"st"),
    "tuple_html": ("404 Not Found", "text/html; charset=utf-8", "<p>caf\u00e9</p>".encode()),
}

STREAMED = {"gen_str", "gen_bytes_like", "iterator", "empty_gen", "tuple_stream"}


class Result:
    def GET(self, name):
        return RESULTS[name]()


class Unsupported:
    def GET(self, name):
        if name == "int":
            return 42
        if name == "object":
            return object()
        if name == "set_chunk_first":
            return chunks({"no": "dicts"}, "later")
        if name == "int_chunk_first":
            return chunks(7)
        if name == "tuple4":
            return ("a", 200, {}, "extra")
        if name == "tuple_bad_status":
            return ("a", "two hundred")
        if name == "tuple_bad_headers":
            return ("a", 200, "X-A: 1")
        if name == "tuple_injection":
            return ("a", 200, {"X-A": "1\r\nSet-Cookie: evil=1"})
        if name == "nested_tuple":
            return (("a", 200), 201)
        raise AssertionError(name)


class LateBadChunk:
    def GET(self):
        def gen():
            yield "fine"
            yield 12

        return gen()


class File:
    def GET(self):
        f = tempfile.TemporaryFile()
        f.write(b"file body")
        f.seek(0)
        return f


class HtmlTyped:
    def GET(self):
        web.header("Content-Type", "application/xhtml+xml")
        return Html()


URLS = (
    "/r/(.+)", "Result",
    "/bad/(.+)", "Unsupported",
    "/late", "LateBadChunk",
    "/file", "File",
    "/typed", "HtmlTyped",
)


@pytest.fixture(params=["no hook", "unloadhook"])
def hooked(request):
    """The application, with or without an unloadhook; ``events`` records hook runs."""
    app = web.application(URLS, globals())
    events = []
    if request.param == "unloadhook":
        app.add_processor(web.unloadhook(lambda: events.append("unload")))
    app.hooked = request.param == "unloadhook"
    app.events = events
    return app


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_each_result_kind_answers_correctly(hooked, name):
    status, ctype, data = EXPECTED[name]
    r = TestClient(hooked).get(f"/r/{name}")
    assert (r.status, r.headers["Content-Type"], r.body) == (status, ctype, data)
    if name in STREAMED:
        assert "Content-Length" not in r.headers
        assert r.headers.get("X-Streamed") == ("yes" if name != "iterator" else None)
    else:
        assert r.headers["Content-Length"] == str(len(data))
    if name.startswith("tuple3"):
        assert r.headers["X-Extra"] in ("1", "2")
    # The unloadhook runs once, after the body (streamed or not) is done.
    assert hooked.events == (["unload"] if hooked.hooked else [])


def test_unloadhook_waits_for_a_streamed_body_even_inside_a_status_tuple():
    events = []

    class Slow:
        def GET(self):
            def gen():
                events.append("first")
                yield "a"
                events.append("second")
                yield "b"

            return gen(), 201

    app = web.application(("/", "Slow"), locals())
    app.add_processor(web.unloadhook(lambda: events.append("unload")))
    r = TestClient(app).get("/")
    assert (r.status, r.body) == ("201 Created", b"ab")
    assert events == ["first", "second", "unload"]


@pytest.mark.parametrize(
    "name",
    ["int", "object", "set_chunk_first", "int_chunk_first", "tuple4", "tuple_bad_status",
     "tuple_bad_headers", "tuple_injection", "nested_tuple"],
)
def test_unsupported_results_are_a_logged_500_naming_the_handler(hooked, caplog, name):
    with caplog.at_level(logging.ERROR, logger="webmini.app"):
        r = TestClient(hooked).get(f"/bad/{name}")
    assert r.status == "500 Internal Server Error"
    assert r.body == b"internal server error"
    assert "42" not in r.text and "object at" not in r.text
    assert "evil" not in str(r.header_items)
    errors = [rec for rec in caplog.records if rec.exc_info]
    assert errors, caplog.text
    message = str(errors[0].exc_info[1])
    assert "test_body.Unsupported.GET" in message
    assert f"GET /bad/{name}" in message
    assert hooked.events == (["unload"] if hooked.hooked else [])


def test_bad_chunk_after_the_status_line_aborts_the_body(hooked, caplog):
    with caplog.at_level(logging.ERROR, logger="webmini.app"), \
            pytest.raises(TypeError, match="test_body.LateBadChunk.GET"):
        TestClient(hooked, validate=False).get("/late")
    assert "error while streaming" in caplog.text
    assert hooked.events == (["unload"] if hooked.hooked else [])


def test_file_uses_the_servers_file_wrapper(hooked):
    wrapped = []

    def file_wrapper(f, size):
        wrapped.append(size)
        return iter(lambda: f.read(size), b"")

    app = hooked.wsgifunc()
    statuses = []
    env = build_environ("/file", env={"wsgi.file_wrapper": file_wrapper})
    out = app(env, lambda status, headers: statuses.append((status, dict(headers))))
    assert b"".join(out) == b"file body"
    assert wrapped == [body.CHUNK_SIZE]
    status, headers = statuses[0]
    assert status == "200 OK"
    assert headers["Content-Length"] == "9"
    assert headers["Content-Type"] == "application/octet-stream"
    # Without a file_wrapper the file is read in chunks by webmini.
    r = TestClient(hooked).get("/file")
    assert r.body == b"file body"


def test_html_keeps_a_content_type_the_handler_set(hooked):
    r = TestClient(hooked).get("/typed")
    assert r.headers.get_all("Content-Type") == ["application/xhtml+xml"]
    assert r.body == "<p>caf\u00e9</p>".encode()


def test_head_of_each_kind_has_no_body(hooked):
    client = TestClient(hooked)
    for name in ("str", "memoryview", "dict", "html", "gen_str", "tuple2"):
        r = client.head(f"/r/{name}")
        assert r.body == b"", name
        assert r.status == EXPECTED[name][0], name


def test_an_unsendable_internalerror_answer_falls_back_to_the_plain_500(caplog):
    app = web.application(URLS, globals())
    app.internalerror = lambda: 12345
    with caplog.at_level(logging.ERROR, logger="webmini.app"):
        r = TestClient(app).get("/bad/object")
    assert (r.status, r.body) == ("500 Internal Server Error", b"internal server error")


def test_kind_checks_html_before_json_and_text():
    class Markup(str):
        def __html__(self):
            return self

    assert body.kind(HtmlDict()) == body.HTML
    assert body.kind(Markup("<i>x</i>")) == body.HTML
    assert body.kind(io.BytesIO(b"")) == body.FILE
    assert body.kind(memoryview(b"")) == body.BYTES
    assert body.kind(3) == body.UNSUPPORTED
    assert body.is_stream(iter(()))
    assert body.is_stream((iter(()), 200))
    assert not body.is_stream(memoryview(b"x"))
    assert not body.is_stream(("x", 200))
