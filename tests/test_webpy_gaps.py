"""web.py behaviours webmini matches: method case, autodelegate arity, single nosniff,
request ids from the TestClient, unsupported result types."""

from __future__ import annotations

import logging
import os

import webmini as web
from webmini.files import serve_file
from webmini.testing import TestClient


class Index:
    def GET(self):
        return "index"


class Delegate:
    GET = web.autodelegate("GET_")

    def GET_one(self):
        return "one"

    def GET_two(self, rest):
        return "two " + rest


class AFile:
    def GET(self):
        return serve_file(os.path.dirname(__file__), os.path.basename(__file__))


class ASet:
    def GET(self):
        return {b"a", b"b"}


class AView:
    def GET(self):
        return {"a": b"x"}.values()


urls = ("/", "Index", "/d/(.*)", "Delegate", "/file", "AFile", "/set", "ASet", "/view", "AView")
app = web.application(urls, globals())
client = TestClient(app)


def test_a_lowercase_method_is_not_dispatched():
    r = TestClient(app, validate=False).request("get", "/")
    assert r.status_code == 405
    assert client.request("GET", "/").status_code == 200


def test_autodelegate_with_more_path_than_the_method_takes_is_a_404():
    assert client.get("/d/one").text == "one"
    assert client.get("/d/two/x").text == "two /x"
    assert client.get("/d/one/extra").status_code == 404  # web.py: notfound, not a 500
    assert client.get("/d/two").status_code == 404  # too little path: the same
    assert client.get("/d/nothere").status_code == 404


def test_serve_file_sends_nosniff_once():
    r = client.get("/file")
    assert r.status_code == 200
    assert [v for k, v in r.header_items if k.lower() == "x-content-type-options"] == ["nosniff"]


def test_test_client_responses_carry_a_request_id():
    ids = {client.get("/").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert client.get("/", headers={"X-Request-ID": "mine-1"}).headers["X-Request-ID"] == "mine-1"


def test_a_set_or_a_dict_view_is_a_500_naming_the_handler(caplog):
    for path, cls, kind in (("/set", "ASet", "set"), ("/view", "AView", "dict_values")):
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            r = client.get(path)
        assert r.status_code == 500 and r.body == b"internal server error", r.body
        text = "\n".join(rec.getMessage() + str(rec.exc_info and rec.exc_info[1])
                         for rec in caplog.records)
        assert f"{cls}.GET for GET {path} returned {kind}" in text, text
