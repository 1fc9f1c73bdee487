"""Attacks on the core's responses, sent to real servers: uWSGI from uwsgi.ini, the
dev server (`webmini run`) and nginx in front of uWSGI.

The app (tests/security_core_app.py) passes request data to redirects,
headers, cookies, error messages and JSON parsing the way real apps do.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.servers import NginxServer, UwsgiServer, WebminiRunProcess

import webmini as web
from webmini.testing import TestClient

StartUwsgi = Callable[..., UwsgiServer]
StartNginx = Callable[[str], NginxServer]
TESTS = Path(__file__).resolve().parent


class Reply:
    """status, headers (a list of (lower-case name, value)), body."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The first value of header ``name``."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def all(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return [v for k, v in self.headers if k == name]


def raw_request(port: int, target: str, headers: dict[str, str] | None = None,
                method: str = "GET", body: bytes | None = None) -> Reply:
    """Send ``target`` exactly as given (no normalisation) and return the reply."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        hdrs = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v.encode("latin-1"))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, [(k.lower(), v) for k, v in resp.getheaders()], data)
    finally:
        conn.close()


@pytest.fixture(scope="module", params=[
    pytest.param("uwsgi", marks=pytest.mark.uwsgi),
    "dev",
    pytest.param("nginx", marks=[pytest.mark.uwsgi, pytest.mark.nginx]),
])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of each real server in turn, serving security_core_app."""
    env = {"WEBMINI_MODULE": "security_core_app:application", "PYTHONPATH": str(TESTS)}
    if request.param == "dev":
        proc = WebminiRunProcess(["security_core_app:app"], tmp_path_factory.mktemp("dev"),
                                 env={"PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"})
        yield proc.port
        proc.stop()
        return
    uwsgi = UwsgiServer(tmp_path_factory.mktemp("uwsgi"), processes=1, env=env)
    uwsgi.start()
    try:
        if request.param == "uwsgi":
            yield uwsgi.http_port
        else:
            nginx = NginxServer(tmp_path_factory.mktemp("nginx"), uwsgi.socket_address).start()
            try:
                yield nginx.port
            finally:
                nginx.stop()
    finally:
        uwsgi.stop()


# -- 2. error bodies, nosniff, cookies ----------------------------------------------


def test_error_messages_are_plain_text_and_nosniff(server: int) -> None:
    """``notfound("no such user: " + name)`` with a script in ``name``: text/plain, nosniff."""
    r = raw_request(server, "/user/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert r.status == 404
    assert (r.header("content-type") or "").startswith("text/plain")
    assert r.header("x-content-type-options") == "nosniff"


def test_undecodable_cookie_is_skipped_not_echoed(server: int) -> None:
    """A planted cookie named like a script with a non-UTF-8 value: ignored, the page works."""
    r = raw_request(server, "/profile", {
        "Cookie": "<script>alert(document.domain)</script>=%ff; user=ann"})
    assert r.status == 200, r.body
    assert b"<script>" not in r.body and b"profile of ann" in r.body


@pytest.mark.parametrize("path", ["/", "/nowhere", "/boom", "/go?to=/x", "/json"])
def test_every_response_is_nosniff(server: int, path: str) -> None:
    """200, 404, 500, 303 and 405 all carry ``X-Content-Type-Options: nosniff``."""
    r = raw_request(server, path)
    assert r.header("x-content-type-options") == "nosniff", (path, r.status)


# -- 3./4. open redirects and Host ---------------------------------------------------


@pytest.mark.parametrize("target", [
    "//evil.com/", "///evil.com/", "/%2Fevil.com/", "/%5Cevil.com/", "/%2F%2Fevil.com/",
    "/go?to=//evil.com", "/go?to=///evil.com", "/go?to=/%5Cevil.com", "/go?to=%5C%5Cevil.com",
    "/go?to=/%09/evil.com",
])
def test_relative_redirects_stay_on_this_host(server: int, target: str) -> None:
    """No Location a browser would read as another host."""
    r = raw_request(server, target)
    location = r.header("location")
    if r.status in (301, 302, 303, 307, 308):
        assert location is not None
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        assert "evil.com" not in location.split("/", 3)[2 if location.startswith("http") else 0]
    else:
        assert r.status in (400, 404), (r.status, location)


@pytest.mark.parametrize("target", ["javascript:alert(document.domain)", "JavaScript:alert(1)",
                                    "data:text/html,<script>alert(1)</script>",
                                    "http:evil.com", "vbscript:msgbox"])
def test_redirect_to_a_script_url_is_refused(server: int, target: str) -> None:
    """Only http/https absolute targets: others are a 400, no Location."""
    from urllib.parse import quote

    r = raw_request(server, "/go?to=" + quote(target, safe=""))
    assert r.status == 400 and r.header("location") is None


def test_forged_host_does_not_move_redirects(server: int) -> None:
    """``Host: evil.com``: the Location of a redirect route stays relative."""
    r = raw_request(server, "/old/a?x=1", {"Host": "evil.com"})
    assert r.status == 301 and r.header("location") == "/new/a?x=1"


def test_is_safe_url_guards_next(server: int) -> None:
    """web.is_safe_url: a "next" pointing elsewhere is replaced by "/"."""
    for bad in ("https://evil.com/", "//evil.com", "/\\evil.com", "javascript:alert(1)"):
        from urllib.parse import quote

        r = raw_request(server, "/next?next=" + quote(bad, safe=""))
        assert r.status == 303 and r.header("location") == "/", bad
    r = raw_request(server, "/next?next=/account")
    assert r.header("location") == "/account"


# -- 8. header and cookie encoding --------------------------------------------------------


def test_non_ascii_redirect_is_percent_encoded(server: int) -> None:
    """An IRI target goes out as a URI (uWSGI used to drop every header)."""
    r = raw_request(server, "/go?to=/caf%C3%A9%20cr%C3%A8me")
    assert r.status == 303 and r.header("location") == "/caf%C3%A9%20cr%C3%A8me"
    assert r.header("x-content-type-options") == "nosniff"
    r = raw_request(server, "/go?to=https://b%C3%BCcher.example/%C3%BC")
    assert r.header("location") == "https://xn--bcher-kva.example/%C3%BC"


def test_header_value_outside_latin1_is_refused_when_set(server: int) -> None:
    """U+2028 in web.header(): a clean 500 with its headers (uWSGI sent 200 and none)."""
    r = raw_request(server, "/note?v=a%E2%80%A8b")
    assert r.status == 500
    assert r.header("x-note") is None
    assert (r.header("content-type") or "").startswith("text/plain")
    assert raw_request(server, "/note?v=fine").header("x-note") == "fine"


def test_cookie_attributes_cannot_be_injected(server: int) -> None:
    """``setcookie(path=user input)`` with ``; Domain=evil.com``: refused, nothing set."""
    r = raw_request(server, "/remember?path=/%3B%20Domain%3Devil.com")
    assert r.status == 500
    assert not any("evil.com" in v for v in r.all("set-cookie"))
    ok = raw_request(server, "/remember?path=/account")
    assert ok.all("set-cookie") == ["seen=1; Path=/account"]


# -- 9. deep JSON ----------------------------------------------------------------------------


def test_deeply_nested_json_is_a_400(server: int) -> None:
    """100,000 nested arrays: 400, not a 500 with a RecursionError."""
    body = b"[" * 100_000 + b"]" * 100_000
    r = raw_request(server, "/json", {"Content-Type": "application/json"}, "POST", body)
    assert r.status == 400
    r = raw_request(server, "/json", {"Content-Type": "application/json"}, "POST", b"[[1]]")
    assert r.status == 200 and json.loads(r.body) == {"type": "list"}


# -- in-process checks of the same rules ----------------------------------------------------


def test_is_safe_url_cases() -> None:
    """The helper's rules, case by case."""
    ok_hosts = {"app.example", "api.example:8443"}
    for url in ("/", "/a/b?c=d#e", "a/b", "?x=1", "https://app.example/x",
                "http://APP.example./x", "https://api.example:8443/"):
        assert web.is_safe_url(url, ok_hosts), url
    for url in ("", None, "//evil.com", "///evil.com", "/\\evil.com", "\\\\evil.com",
                "https://evil.com", "https://app.example@evil.com", "http:evil.com",
                "javascript:alert(1)", "data:text/html,x", "/\t/evil.com", "https://api.example/",
                "ftp://app.example/"):
        assert not web.is_safe_url(url, ok_hosts), url
    assert not web.is_safe_url("http://app.example/", ok_hosts, require_https=True)


def test_session_responses_vary_on_cookie() -> None:
    """Every response of an app with sessions carries Vary: Cookie (shared caches)."""
    from webmini.stores.sessions import CookieStore, Session

    class Me:
        def GET(self) -> str:
            return str(web.ctx.session.get("user"))

    app = web.application(("/me", "Me"), {"Me": Me})
    Session(app, CookieStore(), secret="s" * 32)
    r = TestClient(app).get("/me")
    assert r.status_code == 200 and "Cookie" in r.headers.get("Vary", "")


def test_location_helpers_directly() -> None:
    """Redirect objects built outside a request keep a safe Location too."""
    assert web.seeother("//evil.com/x").headers == [("Location", "/evil.com/x")]
    with pytest.raises(web.BadRequest):
        web.seeother("javascript:alert(1)")
    assert web.found("https://ok.example/ü").headers == [
        ("Location", "https://ok.example/%C3%BC")]


def test_absolute_redirects_only_for_allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """absolute_redirects=True: web.py's absolute Location, but only for a Host we serve."""
    monkeypatch.setitem(web.config, "absolute_redirects", True)
    monkeypatch.setitem(web.config, "allowed_hosts", ("app.example",))

    class Go:
        def GET(self) -> str:
            raise web.seeother("/x")

    client = TestClient(web.application(("/go", "Go"), {"Go": Go}))
    assert client.get("/go", headers={"Host": "app.example"}).headers["Location"] == (
        "http://app.example/x")
    # Any other Host is refused before the handler (webmini.hosts).
    assert client.get("/go", headers={"Host": "evil.com"}).status == "400 Bad Request"


def test_error_pages_from_templates_stay_html() -> None:
    """``web.notfound(render.notfound())``: an __html__ body (escaped by its template) is HTML."""

    class Page:
        def __html__(self) -> str:
            return "<h1>not here</h1>"

    class Missing:
        def GET(self) -> str:
            web.header("Content-Type", "application/json")
            raise web.notfound(Page())

    class Reflect:
        def GET(self) -> str:
            web.header("Content-Type", "text/html; charset=utf-8")
            raise web.notfound("no such user: <script>alert(1)</script>")

    client = TestClient(web.application(("/m", "Missing", "/r", "Reflect"),
                                        {"Missing": Missing, "Reflect": Reflect}))
    r = client.get("/m")
    assert r.status_code == 404 and r.headers.get_all("Content-Type") == [
        "text/html; charset=utf-8"] and r.text == "<h1>not here</h1>"
    r = client.get("/r")  # a type set before raising does not make the message HTML
    assert r.headers.get_all("Content-Type") == ["text/plain; charset=utf-8"]
