"""webmini.logs: request ids, one access-log format, Python logging set up with time/level/pid/worker."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap

import webmini as web
from webmini import logs
from webmini.config import config
from webmini.testing import TestClient

log = logging.getLogger("myapp")


class Hello:
    def GET(self):
        log.warning("inside the handler")
        return "hello"


class Stream:
    def GET(self):
        yield b"a" * 10
        yield b"b" * 5


class Boom:
    def GET(self):
        raise RuntimeError("boom")


app = web.application(("/", "Hello", "/stream", "Stream", "/boom", "Boom"), globals())
client = TestClient(app.wsgifunc())          # wsgifunc() adds webmini.logs.AccessLog


def _access(caplog):
    return [r for r in caplog.records if r.name == "webmini.access"]


def test_request_id_is_made_sent_back_and_on_every_record(caplog):
    with caplog.at_level(logging.INFO):
        r = client.get("/", headers={"User-Agent": "curl/8"})
    rid = r.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    handler_record = next(rec for rec in caplog.records if rec.name == "myapp")
    assert handler_record.request_id == rid
    (line,) = _access(caplog)
    assert line.getMessage().startswith('127.0.0.1 "GET / HTTP/1.1" 200 5 ')
    assert f"rid={rid}" in line.getMessage() and 'ua="curl/8"' in line.getMessage()
    assert line.access["bytes"] == 5 and line.access["duration_ms"] >= 0


def test_a_good_incoming_id_is_kept_a_bad_one_replaced(caplog):
    r = client.get("/", headers={"X-Request-ID": "abc-123.req"})
    assert r.headers["X-Request-ID"] == "abc-123.req"
    r = client.get("/", headers={"X-Request-ID": "evil id\"x"})
    assert r.headers["X-Request-ID"] != "evil id\"x" and len(r.headers["X-Request-ID"]) == 32
    assert client.get("/", headers={"X-Request-ID": "x" * 129}).headers["X-Request-ID"] != "x" * 129


def test_streamed_bytes_are_counted_and_errors_logged(caplog):
    with caplog.at_level(logging.INFO):
        assert client.get("/stream").body == b"a" * 10 + b"b" * 5
        assert client.get("/boom").status_code == 500
    lines = [r.getMessage() for r in _access(caplog)]
    assert '"GET /stream HTTP/1.1" 200 15 ' in lines[0]
    assert '"GET /boom HTTP/1.1" 500 ' in lines[1]


def test_fields_are_escaped_against_forged_lines(caplog):
    with caplog.at_level(logging.INFO):
        client.get("/nothere", headers={"User-Agent": 'x"\n127.0.0.1 "GET /admin" 200'})
    (line,) = [r.getMessage() for r in _access(caplog)]
    assert "\n" not in line and 'ua="x\\x22\\x0a127.0.0.1 \\x22GET /admin\\x22 200"' in line


def test_nested_access_logs_write_one_line(caplog):
    with caplog.at_level(logging.INFO):
        TestClient(logs.AccessLog(app.wsgifunc())).get("/")
    assert len(_access(caplog)) == 1


def test_format_is_configurable_and_switchable(caplog, monkeypatch):
    monkeypatch.setitem(config, "access_log_format", "{method} {path} -> {status} [{request_id}] {nope}")
    with caplog.at_level(logging.INFO):
        r = client.get("/?q=1")
    (line,) = [rec.getMessage() for rec in _access(caplog)]
    assert line == f"GET /?q=1 -> 200 [{r.headers['X-Request-ID']}] -"
    caplog.clear()
    monkeypatch.setitem(config, "access_log", False)
    with caplog.at_level(logging.INFO):
        client.get("/")
    assert _access(caplog) == []


SCRIPT = """
import logging, sys
{before}
from webmini import logs
logs.install_record_fields()
print(logs.configure())
logging.getLogger("myapp").info("hello from the app")
"""


def _run(before):
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(before=textwrap.dedent(before))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def test_logging_is_configured_with_time_level_pid_worker():
    out, err = _run("")
    assert out.strip() == "True"
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[pid \d+ worker 0\] "
                     r"myapp: hello from the app \[rid -\]$", err, re.M), err


ACCESS_SCRIPT = """
import logging
from webmini import logs
logs.configure()
environ = {"REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "PATH_INFO": "/x",
           "SERVER_PROTOCOL": "HTTP/1.1"}
logs.write_access(environ, "200 OK", 5, 1.0, "req-42")
logging.getLogger("myapp").info("app line")
"""


def test_configured_access_lines_name_the_request_id_once():
    proc = subprocess.run([sys.executable, "-c", ACCESS_SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    access, app_line = proc.stderr.splitlines()
    assert re.search(r'\] webmini\.access: 127\.0\.0\.1 "GET /x HTTP/1\.1" 200 5 1\.0ms '
                     r'rid=req-42 ua="-"$', access), access
    assert access.count("req-42") == 1
    assert app_line.endswith("myapp: app line [rid -]"), app_line


GREENLET_SCRIPT = """
from gevent import monkey
monkey.patch_all()
import logging, threading
import gevent
from webmini import logs

class Keep(logging.Handler):
    records = []
    def emit(self, record):
        self.records.append(record)

{setup}
logging.getLogger().addHandler(Keep())
before = len(threading._active)
gevent.joinall([gevent.spawn(logging.getLogger("myapp").warning, "from a greenlet") for _ in range(50)])
print(len(Keep.records), len(threading._active) - before, Keep.records[0].thread)
"""


def test_configure_keeps_greenlets_from_becoming_threads():
    """Records logged from greenlets under webmini's set-up don't ask threading for the
    current thread (under gevent that builds a DummyThread per greenlet, most of an
    access line's cost); without the set-up, each greenlet does."""
    def run(setup):
        proc = subprocess.run([sys.executable, "-c", GREENLET_SCRIPT.format(setup=setup)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert run("logs.configure()") == ["50", "0", "None"]
    records, _, ident = run("logging.getLogger().setLevel(logging.INFO)")
    assert records == "50" and ident != "None"  # threading was asked: the cost avoided above


def test_an_app_that_configures_logging_keeps_its_own():
    out, err = _run("logging.basicConfig(level=logging.INFO, format='APP %(message)s')")
    assert out.strip() == "False"
    assert err.strip() == "APP hello from the app"


BATCH_SCRIPT = """
import logging, sys
import webmini as web
from webmini import logs

class Hello:
    def GET(self):
        logging.getLogger("myapp").info("in the handler")
        return "hello"

logs.configure()
calls = []
original = logging.Logger.handle
def counting(self, record):
    calls.append(record.name)
    return original(self, record)
logging.Logger.handle = counting
wsgi = web.application(("/", "Hello"), {"Hello": Hello}).wsgifunc()
env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_PROTOCOL": "HTTP/1.1",
       "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": 'ua"x', "wsgi.url_scheme": "http"}
for i in range(5):
    body = wsgi(dict(env, QUERY_STRING=f"n={i}"), lambda s, h, e=None: None)
print(sorted(set(calls)), file=sys.stdout, flush=True)
"""


def test_access_lines_are_written_in_a_batch_at_exit_without_logger_handle():
    """The access line costs no logging call on the request's path: lines wait in a
    buffer, written by the flusher or, here, at exit, in configure()'s format."""
    proc = subprocess.run([sys.executable, "-c", BATCH_SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['myapp']"  # the app's own lines only
    access = [line for line in proc.stderr.splitlines() if "webmini.access" in line]
    assert len(access) == 5, proc.stderr
    for i, line in enumerate(access):
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[pid \d+ worker 0\] webmini\.access: "
            rf'127\.0\.0\.1 "GET /\?n={i} HTTP/1\.1" 200 5 [\d.]+ms rid=([0-9a-f]{{32}}) '
            r'ua="ua\\x22x"', line), line
    rids = {re.search(r"rid=(\w+)", line).group(1) for line in access}
    assert len(rids) == 5  # one id per request


MIXED_SCRIPT = """
import logging, sys
import webmini as web
from webmini import logs

class Hello:
    def GET(self):
        return "hello"

logs.configure()
wsgi = web.application(("/", "Hello"), {"Hello": Hello}).wsgifunc()
env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_PROTOCOL": "HTTP/1.1",
       "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "curl/8", "wsgi.url_scheme": "http"}
clients = sys.argv[1:]
for i, client in enumerate(clients):
    query = f"n={i}" if i % 2 else ""
    wsgi(dict(env, QUERY_STRING=query, REMOTE_ADDR=client), lambda s, h, e=None: None)
"""


def _mixed_lines(*clients: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", MIXED_SCRIPT, *clients], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stderr.splitlines() if "webmini.access" in line]


def test_a_clean_batch_and_a_batch_with_a_forged_field_give_the_same_lines():
    """Lines are written a batch at a time, column by column when no field needs escaping,
    else line by line: both give the same format, and a forged client address (a proxy
    fix-up may take it from a header) is escaped, not written raw."""
    clean = _mixed_lines("127.0.0.1", "10.0.0.2", "127.0.0.1", "10.0.0.4")
    forged = _mixed_lines("127.0.0.1", "10.0.0.2", '1.2.3.4" "GET /admin', "10.0.0.4")
    for lines in (clean, forged):
        assert len(lines) == 4, lines
        for i, line in enumerate(lines):
            path = f"/?n={i}" if i % 2 else "/"
            assert re.fullmatch(
                r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[pid \d+ worker 0\] "
                rf'webmini\.access: (\S+) "GET {re.escape(path)} HTTP/1\.1" 200 5 '
                r'\d+\.\dms rid=[0-9a-f]{32} ua="curl/8"', line), line
    strip = [re.sub(r"^.*webmini\.access: (\S+) .* rid=\w+ ", r"\1 ", line) for line in clean]
    assert strip == ['127.0.0.1 ua="curl/8"', '10.0.0.2 ua="curl/8"', '127.0.0.1 ua="curl/8"',
                     '10.0.0.4 ua="curl/8"']
    assert "webmini.access: 1.2.3.4\\x22\\x20\\x22GET\\x20/admin " in forged[2], forged[2]


def test_the_flusher_writes_while_the_process_runs(tmp_path):
    script = BATCH_SCRIPT + "\nimport time; time.sleep(logs.FLUSH_INTERVAL * 5)\nprint('slept', flush=True)\nimport os; os._exit(0)\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "slept" in proc.stdout
    assert proc.stderr.count("webmini.access") == 5, proc.stderr  # written before os._exit


def test_request_ids_differ_across_forked_workers():
    script = """
import os
from webmini import logs
first = logs._new_id()
pid = os.fork()
if pid == 0:
    print(logs._new_id(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print(logs._new_id(), flush=True)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    child, parent = proc.stdout.split()
    assert child[:16] != parent[:16] and len(child) == len(parent) == 32
