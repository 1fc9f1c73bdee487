"""An ``application`` object served directly serves exactly as its ``wsgifunc()`` does.

Under real uWSGI (uwsgi.ini) and gunicorn, an app handed to the server as
the object itself, or through a user's wrapper that calls ``app(environ,
start_response)``, gets what ``wsgifunc()`` gives: the access line, the
request id, Python logging set up (time, level, worker on every line, INFO
kept) and, under uWSGI, the refusal of an HTTP socket beyond loopback.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.applogs import LOGGING_HANDLERS, STAMP, logged_server, wait_for_line
from support.servers import UWSGI_INI, UwsgiServer, http_get, uwsgi_binary

APP = LOGGING_HANDLERS + """
app = web.application(("/hello", "Hello", "/boom", "Boom"), globals())
application = app  # the object itself, not app.wsgifunc()


def wrapped(environ, start_response):
    \"\"\"A user's own wrapper calling the app object.\"\"\"
    environ["myapp.wrapped"] = True
    return app(environ, start_response)
"""


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
@pytest.mark.parametrize("attr", ["application", "wrapped"])
def test_an_app_object_served_directly_logs_and_tags_like_wsgifunc(tmp_path, kind, attr):
    (tmp_path / "objapp.py").write_text(APP)
    with logged_server(kind, tmp_path, f"objapp:{attr}") as (port, read):
        reply = http_get(port, "/hello?x=ann", headers={"User-Agent": "probe/1",
                                                        "X-Request-ID": "req-7"})
        assert reply.status == 200 and reply.headers["x-request-id"] == "req-7"
        # INFO from the app, with time, level, worker and request id.
        wait_for_line(read, rf"^{STAMP} INFO \[pid \d+ worker 1\] myapp: saying hello to ann "
                            r"\[rid req-7\]$")
        wait_for_line(read, r'webmini.access: 127.0.0.1 "GET /hello\?x=ann HTTP/1\.[01]" '
                            r'200 5 [\d.]+ms rid=req-7 ua="probe/1"')
        reply = http_get(port, "/boom")
        assert reply.status == 500
        rid = reply.headers["x-request-id"]  # a fresh id on every answer
        wait_for_line(read, rf"^{STAMP} ERROR \[pid \d+ worker 1\] webmini(?:\.app)?: unhandled "
                            rf"error in GET /boom \[rid {rid}\]$")
        wait_for_line(read, rf'"GET /boom HTTP/1\.[01]" 500 \d+ [\d.]+ms rid={rid}')


@pytest.mark.uwsgi
def test_an_app_object_on_a_public_http_socket_is_refused_at_start(tmp_path: Path) -> None:
    """WEBMINI_HTTP on every interface: uWSGI exits at start for an app object too."""
    (tmp_path / "objapp.py").write_text(APP)
    server = UwsgiServer(tmp_path, module="objapp:application", processes=1)
    env = server.environment()
    env["WEBMINI_HTTP"] = "0.0.0.0:0"
    proc = subprocess.run([uwsgi_binary(), "--ini", str(UWSGI_INI)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert "uWSGI http-socket '0.0.0.0:0' is reachable beyond this host" in proc.stdout + proc.stderr


def test_an_app_chooses_its_error_format_for_every_error() -> None:
    """``app.error_format = "json"``: webmini's own errors too (404, 405, 503 from a store)."""
    import webmini as web
    from webmini.stores.pool import PoolTimeout
    from webmini.testing import TestClient

    class Busy:
        def GET(self):
            raise PoolTimeout("no connection free in 1s")

    class Problems(web.application):
        error_format = "json"

    api = Problems(("/busy", "Busy"), {"Busy": Busy})
    site = web.application(("/busy", "Busy"), {"Busy": Busy})
    for path, status in (("/nowhere", 404), ("/busy", 503)):
        r = TestClient(api).get(path)
        assert r.status_code == status and r.headers["Content-Type"] == "application/problem+json"
        assert r.json()["status"] == status
        r = TestClient(site).get(path)  # web.config.error_format: "text" by default
        assert r.status_code == status and r.headers["Content-Type"].startswith("text/plain")
    r = TestClient(api).request("PUT", "/busy")
    assert r.status_code == 405 and r.json()["title"] == "Method Not Allowed"
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
