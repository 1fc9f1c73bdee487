"""The response headers' owner (webmini.ctx.ResponseHeaders) and web.ctx.headers appended to directly."""

import pytest

import webmini as web
from webmini.ctx import NOSNIFF, NOSNIFF_ONLY, ResponseHeaders


def _fresh() -> ResponseHeaders:
    h = ResponseHeaders()
    h.headers = [NOSNIFF]
    h.content_typed = False
    return h


def test_starts_without_a_content_type():
    h = _fresh()
    assert not h.has_content_type()
    assert h.headers == NOSNIFF_ONLY and h.headers is not NOSNIFF_ONLY


def test_add_header_tracks_a_content_type_in_any_case():
    h = _fresh()
    h.add_header("X-A", "1")
    assert not h.has_content_type()
    h.add_header("content-TYPE", "text/csv")
    assert h.content_typed and h.has_content_type()
    assert h.headers == [NOSNIFF, ("X-A", "1"), ("content-TYPE", "text/csv")]


def test_a_pair_appended_to_the_list_directly_counts():
    h = _fresh()
    h.headers.append(("Content-Type", "text/xml"))
    assert not h.content_typed  # the flag is a hint: the list is the truth
    assert h.has_content_type()
    h.default_content_type("text/html")
    assert [v for n, v in h.headers if n == "Content-Type"] == ["text/xml"]


def test_default_content_type_adds_one_only_when_none():
    h = _fresh()
    h.default_content_type("application/json")
    h.default_content_type("text/html")
    assert h.headers == [NOSNIFF, ("Content-Type", "application/json")]


def test_set_and_drop_content_type():
    h = _fresh()
    h.headers.append(("Content-Type", "text/xml"))
    h.add_header("X-A", "1")
    h.set_content_type("text/plain")
    assert h.headers == [NOSNIFF, ("X-A", "1"), ("Content-Type", "text/plain")]
    h.drop_content_type()
    assert h.headers == [NOSNIFF, ("X-A", "1")] and not h.has_content_type()


@pytest.mark.parametrize("keep, expected", [
    (0, [NOSNIFF]),
    (3, [NOSNIFF, ("X-A", "1")]),
])
def test_reset_headers_keeps_the_first_ones_without_content_type(keep, expected):
    h = _fresh()
    h.add_header("Content-Type", "text/xml")
    h.add_header("X-A", "1")
    h.add_header("X-B", "2")
    h.reset_headers(keep)
    assert h.headers == expected and not h.has_content_type()


def test_reset_headers_brings_nosniff_back():
    h = _fresh()
    h.headers = [("X-A", "1")]
    h.reset_headers(1)
    assert h.headers == [("X-A", "1"), NOSNIFF]


# -- through an application: web.ctx.headers is the list, appended to web.py-style --

class Direct:
    def GET(self, kind):
        web.ctx.headers.append(("Content-Type", "text/xml"))
        if kind == "dict":
            return {"a": 1}
        if kind == "created":
            web.ctx.status = "201 Created"
        if kind == "stream":
            return iter(["<a/>"])
        if kind == "error":
            raise web.notfound("<script>x</script>")
        if kind == "replaced":
            web.ctx.headers = [("Content-Type", "text/xml")]
        return "<a/>"


class Header:
    def GET(self):
        web.header("Content-Type", "text/xml")
        return "<a/>"


app = web.application(("/direct/(.*)", "Direct", "/header", "Header"), globals())


def _types(r):
    return [v for n, v in r.header_items if n.lower() == "content-type"]


@pytest.mark.parametrize("kind", ["str", "dict", "created", "stream", "replaced"])
def test_direct_append_of_content_type_is_the_only_one(kind):
    r = app.request("/direct/" + kind)
    assert r.status.startswith(("200", "201"))
    assert _types(r) == ["text/xml"]


def test_direct_append_same_as_web_header():
    direct, header = app.request("/direct/str"), app.request("/header")

    def same(r):  # every header but the request id, which differs per request
        return [h for h in r.header_items if h[0] != "X-Request-ID"]

    assert same(direct) == same(header) and direct.data == header.data == b"<a/>"
    assert [h[0] for h in direct.header_items].count("X-Request-ID") == 1


def test_an_error_drops_a_directly_appended_content_type():
    # SECURITY: the error's text quotes input: plain text, never the type set before.
    r = app.request("/direct/error")
    assert r.status.startswith("404")
    assert _types(r) == ["text/plain; charset=utf-8"]
