"""The same access line and Python logging set-up under real uWSGI (uwsgi.ini) and gunicorn."""

from __future__ import annotations

import re
import time

import pytest
from support.gunicorn import GunicornServer
from support.servers import UwsgiServer, http_get

APP = """
import logging
import webmini as web

log = logging.getLogger("myapp")


class Hello:
    def GET(self):
        log.info("saying hello to %s", web.input(x="?").x)
        return "hello"


class Boom:
    def GET(self):
        raise RuntimeError("kaboom")


application = web.application(("/hello", "Hello", "/boom", "Boom"), globals()).wsgifunc()
"""

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def _wait_for(read, pattern, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, read(), re.M)
        if m:
            return m
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in log:\n{read()[-3000:]}")


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
def test_access_line_request_id_and_app_logs(tmp_path, kind):
    (tmp_path / "logapp.py").write_text(APP)
    if kind == "uwsgi":
        server = UwsgiServer(tmp_path, module="logapp:application", processes=1).start()
        port, read = server.http_port, lambda: server.log_path.read_text(errors="replace")
    else:
        server = GunicornServer(tmp_path, "logapp:application", processes=1).start()
        port, read = server.port, server.log_tail
    try:
        reply = http_get(port, "/hello?x=ann", headers={"User-Agent": "probe/1",
                                                        "X-Request-ID": "req-42"})
        assert reply.status == 200 and reply.headers["x-request-id"] == "req-42"
        app_line = _wait_for(read, rf"^{STAMP} INFO \[pid (\d+) worker 1\] myapp: "
                                   r"saying hello to ann \[rid req-42\]$")
        access = _wait_for(read, r'^.*webmini.access: 127.0.0.1 "GET /hello\?x=ann HTTP/1\.[01]" '
                                 r'200 5 [\d.]+ms rid=req-42 ua="probe/1".*$')
        assert f"[pid {app_line.group(1)} worker 1]" in access.group(0)
        reply = http_get(port, "/boom")
        assert reply.status == 500
        rid = reply.headers["x-request-id"]
        _wait_for(read, rf"^{STAMP} ERROR \[pid \d+ worker 1\] webmini(?:\.app)?: unhandled error in "
                        rf"GET /boom \[rid {rid}\]$")
        _wait_for(read, r"RuntimeError: kaboom")
        _wait_for(read, rf'"GET /boom HTTP/1\.[01]" 500 \d+ [\d.]+ms rid={rid}')
    finally:
        server.stop()
