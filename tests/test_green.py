"""Guarding the event loop: patching, the blocking-module audit, the hub monitor, timeouts."""

import http.client
import logging
import os
import subprocess
import sys
import textwrap
import time

import gevent
import pytest

import webmini as web
from webmini.serving import green
from webmini.serving.devserver import make_server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, cwd=None):
    """Run `code` in a fresh interpreter (unpatched); return the completed process."""
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def serve_app():
    servers = []

    def start(app):
        server = make_server(app.wsgifunc(), ("127.0.0.1", 0))
        server.start()
        servers.append(server)
        return server.server_port

    yield start
    for server in servers:
        server.stop(timeout=1)


def _get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, time.monotonic()


# -- patch() ----------------------------------------------------------------------------


def test_patch_twice_is_a_noop():
    proc = _python("""
        import warnings
        warnings.simplefilter("error")  # any warning fails the run
        from webmini.serving import green
        assert not green.is_patched()
        from gevent import monkey
        first = green.patch()
        saved = {k: dict(v) for k, v in monkey.saved.items()}
        second = green.patch()
        assert {k: dict(v) for k, v in monkey.saved.items()} == saved
        import socket, threading
        print(first, second, green.is_patched(), monkey.is_module_patched("socket"))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False", "True", "True"]


def test_patch_in_an_already_patched_process_does_nothing():
    # conftest.py patched this process first thing.
    assert green.is_patched()
    assert green.patch() is False
    assert green.patch() is False


def test_late_patch_warns_loudly():
    proc = _python("""
        import logging, threading, warnings, time
        logging.basicConfig(level=logging.WARNING, format="LOG %(name)s %(message)s")
        release = threading.Event()  # the thread lives until patch() has looked
        t = threading.Thread(target=release.wait, name="early-worker")
        t.start()
        import ssl
        import MySQLdb
        from webmini.serving import green
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert green.patch() is True
        release.set()
        for w in caught:
            if issubclass(w.category, green.LatePatchWarning):
                print("WARNING", w.message)
    """)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stdout.splitlines() if line.startswith("WARNING")]
    assert any("threads were started" in w and "early-worker" in w for w in warned), proc.stdout
    assert any("ssl was imported" in w for w in warned)
    assert any("MySQLdb" in w for w in warned)
    logged = [line for line in proc.stderr.splitlines() if line.startswith("LOG webmini.serving.green")]
    assert len(logged) == len(warned) == 3


def test_early_patch_does_not_warn():
    proc = _python("""
        import warnings
        warnings.simplefilter("error")
        from webmini.serving import green
        green.patch()
        import ssl, threading, MySQLdb
        print("ok")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# -- the audit ----------------------------------------------------------------------------


def test_audit_names_a_loaded_c_driver_and_its_replacement():
    proc = _python("""
        from webmini.serving import green
        green.patch()
        before = green.audit()
        import MySQLdb  # mysqlclient: a C extension over libmariadb
        for item in green.audit():
            print(item.module, "|", item.package, "|", item.use_instead)
        print("before", len(before))
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "before 0"
    assert len(lines) == 2 and lines[0].startswith("MySQLdb | mysqlclient | pymysql")


def test_audit_of_this_process_is_clean():
    # pymysql and python-memcached (what webmini.stores.mysql/cache use) are pure Python.
    import memcache  # noqa: F401
    import pymysql  # noqa: F401

    assert [b.module for b in green.audit()] == []


def test_startup_check_reports_through_logging():
    proc = _python("""
        import logging
        logging.basicConfig(level=logging.WARNING, format="LOG %(name)s %(message)s")
        from webmini.serving import green
        green.patch()
        import MySQLdb
        found = green.startup_check(debug=False)
        print([b.module for b in found])
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['MySQLdb']"
    assert "LOG webmini.serving.green MySQLdb (mysqlclient) blocks the event loop" in proc.stderr


# -- the hub monitor ----------------------------------------------------------------------


class Spin:
    def GET(self):
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:  # CPU-bound: never yields to the hub
            pass
        return "spun"


class Nap:
    def GET(self):
        gevent.sleep(0.3)  # cooperative: the hub keeps running
        return "napped"


class Offloaded:
    def GET(self):
        def spin():
            end = time.perf_counter() + 0.3
            while time.perf_counter() < end:
                pass
            return "offloaded"

        from webmini.realtime.offload import offload

        return offload(spin, kind="thread")  # a real thread: the hub keeps running


monitor_app = web.application(
    ("/spin", "Spin", "/nap", "Nap", "/offloaded", "Offloaded"), globals()
)


@pytest.fixture
def monitor():
    green.start_monitor(max_blocking_time=0.1)
    yield
    green.stop_monitor()


def _block_records(caplog, path):
    # Only records about our requests: pytest's own code running in the main
    # greenlet can hold the hub too while the monitor is on.
    return [r.getMessage() for r in caplog.records
            if r.name == "webmini.serving.green" and "blocked the event loop for" in r.getMessage()
            and path in r.getMessage()]


def test_monitor_names_the_request_and_handler_that_blocked(serve_app, monitor, caplog):
    port = serve_app(monitor_app)
    with caplog.at_level(logging.WARNING, logger="webmini.serving.green"):
        status, body, _ = _get(port, "/spin")
        gevent.sleep(0.05)
    assert (status, body) == (200, b"spun")
    reports = _block_records(caplog, "GET /spin")
    assert len(reports) == 1, [r.getMessage() for r in caplog.records]
    report = reports[0]
    assert "GET /spin in test_green.Spin.GET" in report, report
    took = float(report.split("blocked the event loop for ")[1].split(" s")[0])
    assert 0.25 <= took <= 1.0  # the handler spun 0.3 s
    assert "test_green.py" in report  # where it was spinning


def test_monitor_ignores_cooperative_waits(serve_app, monitor, caplog):
    port = serve_app(monitor_app)
    with caplog.at_level(logging.WARNING, logger="webmini.serving.green"):
        assert _get(port, "/nap")[:2] == (200, b"napped")
        assert _get(port, "/offloaded")[:2] == (200, b"offloaded")
        gevent.sleep(0.2)
    assert _block_records(caplog, "GET /nap") == []
    assert _block_records(caplog, "GET /offloaded") == []
    assert _block_records(caplog, "Offloaded") == []


# -- per-request timeouts (gevent.Timeout in the core) ---------------------------------------


class Slow:
    timeout = 0.2

    def GET(self):
        gevent.sleep(2)
        return "too late"


class Quick:
    def GET(self):
        gevent.sleep(0.01)
        return "quick"


class Patient:
    timeout = 2  # overrides the application's 0.3 s

    def GET(self):
        gevent.sleep(0.5)
        return "patient"


class Default:
    def GET(self):
        gevent.sleep(1)
        return "default"


timeout_app = web.application(
    ("/slow", "Slow", "/quick", "Quick", "/patient", "Patient", "/default", "Default"),
    globals(), timeout=0.3,
)


def test_handler_over_its_timeout_gets_504_while_siblings_are_served(serve_app):
    port = serve_app(timeout_app)
    t0 = time.monotonic()
    slow = gevent.spawn(_get, port, "/slow")
    quick = [gevent.spawn(_get, port, "/quick") for _ in range(20)]
    gevent.joinall([slow, *quick], timeout=10, raise_error=True)
    status, _, slow_done = slow.value
    assert status == 504
    assert 0.15 <= slow_done - t0 < 1.5  # cut at 0.2 s, not after its 2 s sleep
    assert all(q.value[:2] == (200, b"quick") for q in quick)
    # The siblings finished while the slow request was still waiting.
    assert max(q.value[2] for q in quick) < slow_done


def test_application_timeout_and_handler_override(serve_app):
    port = serve_app(timeout_app)
    default = gevent.spawn(_get, port, "/default")
    patient = gevent.spawn(_get, port, "/patient")
    gevent.joinall([default, patient], timeout=10, raise_error=True)
    assert default.value[0] == 504  # the application's 0.3 s
    assert patient.value[:2] == (200, b"patient")  # its own 2 s
