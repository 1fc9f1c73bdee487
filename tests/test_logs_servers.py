"""The same access line and Python logging set-up under real uWSGI (uwsgi.ini) and gunicorn."""

from __future__ import annotations

import os
import re
import time

import pytest
from support.applogs import LOGGING_HANDLERS, STAMP, logged_server, wait_for_line
from support.servers import http_get

APP = LOGGING_HANDLERS + """
application = web.application(("/hello", "Hello", "/boom", "Boom"), globals()).wsgifunc()
"""


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
def test_access_line_request_id_and_app_logs(tmp_path, kind):
    (tmp_path / "logapp.py").write_text(APP)
    with logged_server(kind, tmp_path, "logapp:application") as (port, read):
        reply = http_get(port, "/hello?x=ann", headers={"User-Agent": "probe/1",
                                                        "X-Request-ID": "req-42"})
        assert reply.status == 200 and reply.headers["x-request-id"] == "req-42"
        app_line = wait_for_line(read, rf"^{STAMP} INFO \[pid (\d+) worker 1\] myapp: "
                                       r"saying hello to ann \[rid req-42\]$")
        access = wait_for_line(read, r'^.*webmini.access: 127.0.0.1 "GET /hello\?x=ann HTTP/1\.[01]" '
                                     r'200 5 [\d.]+ms rid=req-42 ua="probe/1".*$')
        assert f"[pid {app_line.group(1)} worker 1]" in access.group(0)
        reply = http_get(port, "/boom")
        assert reply.status == 500
        rid = reply.headers["x-request-id"]
        wait_for_line(read, rf"^{STAMP} ERROR \[pid \d+ worker 1\] webmini(?:\.app)?: unhandled error in "
                            rf"GET /boom \[rid {rid}\]$")
        wait_for_line(read, r"RuntimeError: kaboom")
        wait_for_line(read, rf'"GET /boom HTTP/1\.[01]" 500 \d+ [\d.]+ms rid={rid}')


PLAIN_APP = """
import logging
import time
import webmini as web

log = logging.getLogger("myapp")


class Hello:
    def GET(self):
        log.info("plain hello")
        return "hello"


application = web.application(("/hello", "Hello"), globals()).wsgifunc()
"""


class _PlainServer:
    """A server started with its own command line only: none of webmini's configs."""

    def __init__(self, workdir, command, port):
        import subprocess

        self.port = port
        self.log_path = workdir / "plain.log"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        env["PYTHONPATH"] = str(workdir)
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def read(self):
        return self.log_path.read_text(errors="replace")

    def get(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                return http_get(self.port, path, headers={"User-Agent": "plain/1"})
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(self.read()) from None
                time.sleep(0.2)

    def stop(self):
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _plain(tmp_path, kind):
    from support.servers import uwsgi_binary

    from localservices import free_port
    from localservices.gunicorn import GUNICORN

    (tmp_path / "plainapp.py").write_text(PLAIN_APP)
    port = free_port()
    commands = {
        "gunicorn-sync": [GUNICORN, "-b", f"127.0.0.1:{port}", "-w", "1", "plainapp:application"],
        "gunicorn-gevent": [GUNICORN, "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gevent",
                            "plainapp:application"],
        "uwsgi-gevent": [uwsgi_binary(), "--http-socket", f"127.0.0.1:{port}", "--master",
                         "--processes", "1", "--gevent", "100", "--module",
                         "plainapp:application", "--die-on-term", "--need-app"],
    }
    return _PlainServer(tmp_path, commands[kind], port)


@pytest.mark.parametrize("kind", ["gunicorn-sync", "gunicorn-gevent", "uwsgi-gevent"])
def test_plain_servers_keep_logs_and_name_the_fix(tmp_path, kind):
    """Without webmini's configs, the app's lines and the access line still reach the log,
    and an unpatched process says once what to run instead."""
    server = _plain(tmp_path, kind)
    try:
        for _ in range(2):
            assert server.get("/hello").status == 200
        wait_for_line(server.read, rf"^{STAMP} INFO \[pid \d+ worker \d+\] myapp: plain hello "
                                   r"\[rid [0-9a-f]{32}\]$")
        wait_for_line(server.read, r'webmini\.access: 127\.0\.0\.1 "GET /hello HTTP/1\.[01]" 200 5 '
                                   r'[\d.]+ms rid=[0-9a-f]{32} ua="plain/1"')
        log = server.read()
        warnings = re.findall(r"gevent has not patched this process.*", log)
        if kind == "gunicorn-gevent":
            assert warnings == [], log  # patched by gunicorn's gevent worker
        else:
            fix = ("gunicorn -c python:webmini.serving.gunicorn_conf" if kind.startswith("gunicorn")
                   else "webmini config uwsgi > uwsgi.ini")
            assert len(warnings) == 1 and fix in warnings[0], log
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
def test_access_lines_of_the_last_requests_are_written_at_stop(tmp_path, kind):
    """Lines wait up to 0.2 s for their batch: a stop right after the last requests
    writes them (under uWSGI, Python's atexit does not run when SIGTERM stops a worker)."""
    (tmp_path / "logapp.py").write_text(APP)
    with logged_server(kind, tmp_path, "logapp:application") as (port, read):
        for i in range(5):
            assert http_get(port, f"/hello?x=last{i}").status == 200
    text = read()
    for i in range(5):
        assert re.search(rf'webmini\.access: 127\.0\.0\.1 "GET /hello\?x=last{i} HTTP/1\.[01]" '
                         r"200 5 ", text), text[-3000:]
