"""gunicorn's gevent worker with webmini's config: the same guarantees as uwsgi.ini, on real gunicorn.

(WebSockets on gunicorn run in tests/test_websocket.py, every test with each server.)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import gevent
import pytest
from support.gunicorn import GunicornServer

from localservices import free_port, wait_until

pytestmark = pytest.mark.gunicorn

OWN_APP = """
import os
import sys
import threading

import gevent.monkey
import webmini as web
from webmini.ops.metrics import Metrics

# Recorded at import: the worker must be patched before the app is imported.
PATCHED_AT_IMPORT = gevent.monkey.is_module_patched("socket") and \\
    gevent.monkey.is_module_patched("threading")

metrics = Metrics(spool_dir=os.environ["METRICS_DIR"], flush_interval=0.0)


class Info:
    def GET(self):
        return {"pid": os.getpid(), "patched_at_import": PATCHED_AT_IMPORT,
                "cwd": os.getcwd(), "data": open("data.txt").read().strip()}


class Slow:
    def GET(self):
        gevent.sleep(0.05)
        return "slow"


app = web.application(("/info", "Info", "/slow", "Slow", "/metrics", metrics.handler,
                       "/", "Info"), globals())
app.add_processor(metrics.processor)
application = app.wsgifunc()
"""


@pytest.fixture
def own_app(tmp_path):
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "myapp.py").write_text(OWN_APP)
    (project / "data.txt").write_text("from the project")
    # not created here: Metrics makes its spool directory 0700 (it refuses one open to others)
    return project, {"METRICS_DIR": str(tmp_path / "metrics")}


def _start(project, env, processes=2, args=()):
    return GunicornServer(project, "myapp:application", processes=processes, env=env,
                          args=args).start()


def test_own_app_from_its_directory_patched_before_import(own_app):
    project, env = own_app
    server = _start(project, env)
    try:
        status, headers, body = server.get("/info")
        assert status == 200, body
        import json
        info = json.loads(body)
        assert info["patched_at_import"] is True
        assert info["cwd"] == str(project) and info["data"] == "from the project"
        assert headers["content-type"] == "application/json"
        assert "webmini: worker 1 (pid" in server.log_tail()
        assert "webmini: worker 2 (pid" in server.log_tail()
    finally:
        server.stop()


def test_startup_audit_names_a_blocking_driver(own_app):
    project, env = own_app
    (project / "myapp.py").write_text("import MySQLdb\n" + OWN_APP)
    server = _start(project, env, processes=1)
    try:
        assert server.get("/info")[0] == 200
        log = server.log_tail()
        assert "MySQLdb (mysqlclient) blocks the event loop" in log, log
    finally:
        server.stop()


def test_metrics_per_worker(own_app):
    project, env = own_app
    server = _start(project, env)
    try:
        pids = set()
        deadline = time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:
            jobs = [gevent.spawn(server.get, "/slow") for _ in range(20)]
            gevent.joinall(jobs, raise_error=True)
            pids.update(__import__("json").loads(server.get("/info")[2])["pid"]
                        for _ in range(4))
        assert len(pids) == 2, "both workers should have served requests"
        # Each worker spools its snapshot about once a second: poll until both are in.
        def workers() -> set[str]:
            text = server.get("/metrics")[2].decode()
            return set(re.findall(r'webmini_requests_total\{[^}]*worker="(\d+)"', text))

        assert wait_until(lambda: workers() == {"1", "2"}, 10, interval=0.1), workers()
    finally:
        server.stop()


def test_graceful_reload_on_hup_fails_no_request(own_app):
    project, env = own_app
    server = _start(project, env)
    failures: list[str] = []
    done = 0
    stop = False

    def client() -> None:
        nonlocal done
        while not stop:
            try:
                status, _, _ = server.get("/slow")
                if status != 200:
                    failures.append(str(status))
                done += 1
            except OSError as exc:
                failures.append(repr(exc))

    try:
        old = set(server.worker_pids())
        clients = [gevent.spawn(client) for _ in range(20)]
        gevent.sleep(0.5)
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGHUP)
        assert server.wait_ready(30, exclude=sorted(old))
        # The old workers finish their requests and exit (graceful_timeout).
        deadline = time.monotonic() + 30
        while old & set(server.worker_pids()) and time.monotonic() < deadline:
            gevent.sleep(0.1)
        assert not (old & set(server.worker_pids())), "HUP should replace every worker"
        gevent.sleep(0.5)
        stop = True
        gevent.joinall(clients, timeout=15)
        assert done > 50 and failures == [], failures[:5]
    finally:
        stop = True
        server.stop()


def test_sigterm_while_workers_boot_stops_every_worker(own_app):
    """A stop right after the start: a worker still booting keeps the SIGTERM (held until its
    handlers are in) and exits; none is left for the master to SIGKILL after graceful_timeout."""
    project, env = own_app
    server = GunicornServer(project, "myapp:application", processes=4, env=env,
                            args=["--graceful-timeout", "5"])
    server.port = free_port()
    with open(server.log_path, "ab") as out:
        server.proc = subprocess.Popen(server.command(), cwd=project, env=server.environment(),
                                       stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # The last worker is forked: it (and maybe others) is still patching and importing.
        assert wait_until(lambda: server.log_text().count("Booting worker") >= 4, 30), \
            server.log_tail()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        log = server.log_text()
        assert "SIGKILL" not in log, log[-3000:]
        booted = re.findall(r"Booting worker with pid: (\d+)", log)
        assert sorted(re.findall(r"Worker exiting \(pid: (\d+)\)", log)) == sorted(booted), log
    finally:
        server.stop()
