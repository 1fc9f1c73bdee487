"""A web.py-style app rendering pages through a layout, under the dev server and under uWSGI."""

from __future__ import annotations

import http.client
import time
from pathlib import Path

TEMPLATE_APP = '''
import os
import webmini as web

HERE = os.path.dirname(os.path.abspath(__file__))
render = web.template.render(os.path.join(HERE, "templates"), base="layout")

urls = ("/", "Index", "/users/(\\\\d+)", "User")


class Index:
    def GET(self):
        return render.index(["Ann <a>", "Bob & co"])


class User:
    def GET(self, uid):
        return render.users.show(int(uid), web.input(q="").q)


app = web.application(urls, globals())
application = app.wsgifunc()
'''

LAYOUT = "$def with (content)\n<html><head><title>$:content.title</title></head>\n" \
    "<body>$:content</body></html>\n"
INDEX = "$def with (names)\n$var title: People\n<ul>\n$for n in names:\n" \
    "    <li class=\"$loop.parity\">$n</li>\n</ul>\n"
SHOW = "$def with (uid, q)\n$var title: User $uid\n<p>#$uid q=$q</p>\n"
EXPECTED_INDEX = (
    b"<html><head><title>People</title></head>\n<body><ul>\n"
    b"<li class=\"odd\">Ann &lt;a&gt;</li>\n<li class=\"even\">Bob &amp; co</li>\n</ul>\n"
    b"</body></html>\n"
)


def write_app(directory: Path) -> Path:
    """Write the app module and its templates into ``directory``."""
    (directory / "tmplapp.py").write_text(TEMPLATE_APP)
    templates = directory / "templates"
    (templates / "users").mkdir(parents=True)
    (templates / "layout.html").write_text(LAYOUT)
    (templates / "index.html").write_text(INDEX)
    (templates / "users" / "show.html").write_text(SHOW)
    return templates


def _get(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", body


def _poll(port: int, path: str, wanted: bytes, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    body = b""
    while time.monotonic() < deadline:
        body = _get(port, path)[2]
        if wanted in body:
            break
        time.sleep(0.1)
    return body


def test_layout_under_the_dev_server_and_reload(webmini_run, tmp_path: Path) -> None:
    templates = write_app(tmp_path)
    server = webmini_run("tmplapp:app", "--reload")
    status, ctype, body = _get(server.port, "/")
    assert (status, ctype, body) == (200, "text/html; charset=utf-8", EXPECTED_INDEX)
    status, ctype, body = _get(server.port, "/users/7?q=%3Cx%3E")
    assert status == 200 and body == (b"<html><head><title>User 7</title></head>\n"
                                      b"<body><p>#7 q=&lt;x&gt;</p>\n</body></html>\n")
    # A template edit is picked up without a restart (the reloader watches .py files only).
    time.sleep(0.05)
    (templates / "users" / "show.html").write_text(SHOW.replace("<p>", "<p>v2 "))
    assert b"<p>v2 #7" in _poll(server.port, "/users/7", b"v2")
    assert "reloading" not in server.output()


def test_production_dev_server_keeps_compiled_templates(webmini_run, tmp_path: Path) -> None:
    templates = write_app(tmp_path)
    server = webmini_run("tmplapp:app")
    assert _get(server.port, "/")[2] == EXPECTED_INDEX
    (templates / "index.html").write_text("$def with (names)\n$var title: X\nchanged\n")
    time.sleep(0.3)
    assert _get(server.port, "/")[2] == EXPECTED_INDEX


def test_layout_under_uwsgi(start_uwsgi, tmp_path: Path) -> None:
    write_app(tmp_path)
    server = start_uwsgi(processes=2, env={"WEBMINI_MODULE": "tmplapp:application",
                                           "PYTHONPATH": str(tmp_path)})
    for _ in range(4):  # both workers
        reply = server.get("/")
        assert reply.status == 200
        assert reply.headers["content-type"] == "text/html; charset=utf-8"
        assert reply.body == EXPECTED_INDEX
    reply = server.get("/users/42?q=a%26b")
    assert reply.body == (b"<html><head><title>User 42</title></head>\n"
                          b"<body><p>#42 q=a&amp;b</p>\n</body></html>\n")
