"""JSON errors (RFC 9457) for every HTTPError, CORS headers that survive a 500, web.json(strict=True)."""

from __future__ import annotations

import pytest

import webmini as web
from webmini.config import config
from webmini.cors import CORS
from webmini.testing import TestClient


class Item:
    def GET(self, n):
        if n == "0":
            raise web.notfound("no item 0")
        if n == "9":
            raise RuntimeError("boom")
        if n == "7":
            raise web.HTTPError(422, data={"errors": ["n is 7"]})
        return {"n": int(n)}

    def POST(self, n):
        return {"got": web.json(strict=True)}


class Upload:
    def POST(self):
        return web.data()


class Field:
    def GET(self):
        return web.input("name").name


def make_app():
    return web.application(("/items/(\\d+)", Item, "/upload", Upload, "/field", Field), {})


@pytest.fixture
def json_errors(monkeypatch):
    monkeypatch.setitem(config, "error_format", "json")


PROBLEM = "application/problem+json"


def test_builtin_errors_as_problem_details(json_errors, monkeypatch):
    client = TestClient(make_app())
    r = client.get("/nowhere")
    assert (r.status_code, r.headers["Content-Type"]) == (404, PROBLEM)
    assert r.json() == {"type": "about:blank", "title": "Not Found", "status": 404}
    r = client.delete("/items/1")
    assert r.status_code == 405 and r.headers["Content-Type"] == PROBLEM
    assert "GET" in r.headers["Allow"] and r.json()["title"] == "Method Not Allowed"
    r = client.get("/field")
    assert r.status_code == 400 and r.json()["detail"] == "missing required field 'name'"
    r = client.get("/items/0")
    assert r.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                        "detail": "no item 0"}
    r = client.get("/items/9")
    assert r.status_code == 500 and r.headers["Content-Type"] == PROBLEM
    assert r.json()["status"] == 500 and "boom" not in r.text
    monkeypatch.setitem(config, "max_body_size", 10)
    r = client.post("/upload", data=b"x" * 100)
    assert r.status_code == 413 and r.json()["status"] == 413
    r = client.post("/items/1", data="{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.headers["Content-Type"] == PROBLEM


def test_a_dict_body_is_sent_as_json_as_it_is(json_errors):
    r = TestClient(make_app()).get("/items/7")
    assert r.status_code == 422 and r.json() == {"errors": ["n is 7"]}
    assert r.headers["Content-Type"] == "application/json"


def test_non_utf8_path_is_a_json_400(json_errors):
    # PEP 3333: PATH_INFO carries the raw bytes as latin-1 code points
    r = TestClient(make_app()).get("/", env={"PATH_INFO": "/items/\xff"})
    assert r.status_code == 400 and r.headers["Content-Type"] == PROBLEM


def test_auto_follows_accept(monkeypatch):
    monkeypatch.setitem(config, "error_format", "auto")
    client = TestClient(make_app())
    assert client.get("/x", headers={"Accept": "application/json"}).headers["Content-Type"] == PROBLEM
    r = client.get("/x", headers={"Accept": "text/html,application/json;q=0.9"})
    assert r.headers["Content-Type"].startswith("text/plain") and r.text == "not found"
    assert client.get("/x").headers["Content-Type"].startswith("text/plain")


def test_text_is_the_default_for_builtin_and_custom_messages():
    client = TestClient(make_app())
    r = client.get("/x")
    assert r.headers["Content-Type"].startswith("text/plain") and r.text == "not found"
    r = client.get("/items/0")
    assert r.headers["Content-Type"].startswith("text/plain") and r.text == "no item 0"


def test_custom_renderer(monkeypatch):
    monkeypatch.setitem(config, "error_renderer",
                        lambda e, env: ("application/vnd.err", e.status.encode()))
    r = TestClient(make_app()).get("/x")
    assert r.headers["Content-Type"] == "application/vnd.err" and r.text == "404 Not Found"


def test_json_strict_content_type():
    client = TestClient(make_app())
    assert client.post("/items/1", json={"a": 1}).json() == {"got": {"a": 1}}
    r = client.post("/items/1", data='{"a": 1}',
                    headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200
    r = client.post("/items/1", data='{"a": 1}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = client.post("/items/1", data='{"a": 1}')
    assert r.status_code == 415


# -- CORS -----------------------------------------------------------------------


def cors_client(**kw):
    app = make_app()
    app.add_processor(CORS(origins=["https://app.example"], **kw))
    return TestClient(app)


def test_preflight_is_answered_without_the_handler():
    r = cors_client().options("/items/1", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-request-id"})
    assert r.status_code == 204 and r.body == b""
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "PUT" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-request-id"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in r.headers["Vary"]


def test_preflight_refused_for_other_origins_methods_and_headers():
    client = cors_client()
    for headers in (
        {"Origin": "https://app.example.evil.net", "Access-Control-Request-Method": "GET"},
        {"Origin": "https://app.example", "Access-Control-Request-Method": "TRACE"},
        {"Origin": "https://app.example", "Access-Control-Request-Method": "GET",
         "Access-Control-Request-Headers": "X-Secret"},
    ):
        r = client.options("/items/1", headers=headers)
        assert "Access-Control-Allow-Origin" not in r.headers, headers
        assert "GET" in r.headers["Allow"]


def test_cors_headers_survive_errors_and_a_500(json_errors):
    client = cors_client(credentials=True)
    origin = {"Origin": "https://app.example"}
    for path, status in (("/items/1", 200), ("/items/0", 404), ("/items/9", 500), ("/nope", 404)):
        r = client.get(path, headers=origin)
        assert r.status_code == status
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example", path
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
    r = client.get("/items/1", headers={"Origin": "https://other.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_wildcard_with_credentials_is_refused():
    with pytest.raises(ValueError, match="explicit origins"):
        CORS(origins="*", credentials=True)
    r = TestClient(web.application(("/", Field), {})).get("/")
    assert r.status_code == 400
