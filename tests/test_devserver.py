"""The gevent dev server: keep-alive latency, timeouts, limits, reload, workers, debug page."""

import http.client
import logging
import socket
import statistics
import time

import gevent
import pytest

import webmini as web
from webmini.config import config
from webmini.serving.debugpage import render
from webmini.serving.devserver import make_server

PLAIN_APP = """
import os

def app(environ, start_response):
    body = ("%s %d" % (environ["PATH_INFO"], os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def _plain(environ, start_response):
    body = environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def dev_server():
    """Start in-process dev servers on free ports; stop them afterwards."""
    servers = []

    def start(app=_plain, **options):
        server = make_server(app, ("127.0.0.1", 0), **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(timeout=1)


def _get(port, path="/", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def _recv_all(sock, timeout=5.0):
    sock.settimeout(timeout)
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


# -- keep-alive latency (TCP_NODELAY) -----------------------------------------


def test_keepalive_client_gets_sub_millisecond_latency(webmini_run, tmp_path):
    (tmp_path / "plainapp.py").write_text(PLAIN_APP)
    server = webmini_run("plainapp:app")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    times = []
    for i in range(200):
        t0 = time.perf_counter()
        conn.request("GET", f"/k{i}")
        resp = conn.getresponse()
        body = resp.read()
        times.append(time.perf_counter() - t0)
        assert resp.status == 200 and body.startswith(f"/k{i} ".encode())
    conn.close()
    # One connection all along: every answer came from the same process.
    # Without TCP_NODELAY each request waits ~40 ms (Nagle + delayed ACK).
    assert statistics.median(times) < 0.005, statistics.median(times)


def test_accepted_sockets_have_tcp_nodelay(dev_server):
    seen = {}

    def app(environ, start_response):
        sock = environ["webmini.pywsgi_handler"].socket
        seen["nodelay"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        start_response("200 OK", [("Content-Length", "0")])
        return []

    server = dev_server(app)
    assert _get(server.server_port)[0] == 200
    assert seen["nodelay"] == 1


# -- timeouts and limits ---------------------------------------------------------


def test_slow_header_client_is_cut_off_while_others_are_served(dev_server):
    server = dev_server(header_timeout=0.6, keepalive_timeout=5)
    slow = socket.create_connection(("127.0.0.1", server.server_port))
    slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
    answer = {}

    def trickle():
        # A slowloris client: one header byte every 0.1 s, never finishing.
        try:
            for _ in range(100):
                slow.sendall(b"X")
                gevent.sleep(0.1)
        except OSError:
            answer["send_failed"] = True

    def read_answer():
        answer["data"] = _recv_all(slow, timeout=5)
        answer["at"] = time.monotonic()

    t0 = time.monotonic()
    trickler = gevent.spawn(trickle)
    reader = gevent.spawn(read_answer)
    served = [_get(server.server_port, f"/other{i}") for i in range(20)]
    assert all(status == 200 for status, _ in served)
    assert [body for _, body in served] == [f"/other{i}".encode() for i in range(20)]
    reader.join(5)
    trickler.kill()
    slow.close()
    assert answer["data"].startswith(b"HTTP/1.1 408 ")
    assert answer["at"] - t0 < 3, "the slow client was not cut off by header_timeout"


def test_idle_keepalive_connection_is_closed(dev_server):
    server = dev_server(keepalive_timeout=0.3)
    sock = socket.create_connection(("127.0.0.1", server.server_port))
    sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    data = _recv_all(sock, timeout=5)  # returns once the server closes the connection
    sock.close()
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"/first")
    assert time.monotonic() - t0 < 3


def test_header_size_limit_is_431(dev_server):
    server = dev_server(max_header_size=2048)
    status, _ = _get(server.server_port, "/", {"X-Big": "a" * 4000})
    assert status == 431
    # Just under the limit is fine, and the default limit is config.max_header_size.
    assert _get(server.server_port, "/", {"X-Ok": "a" * 1500}) == (200, b"/")
    default = dev_server()
    assert default.max_header_size == config.max_header_size
    status, _ = _get(default.server_port, "/", {"X-Big": "a" * (config.max_header_size + 10)})
    assert status == 431


def test_bounded_pool(dev_server):
    server = dev_server(pool_size=7)
    assert server.pool.size == 7


# -- access log, errors, upgrade contract ---------------------------------------------


def test_access_log_goes_through_logging(dev_server, caplog):
    server = dev_server()
    with caplog.at_level(logging.INFO, logger="webmini.access"):
        assert _get(server.server_port, "/logged?x=1")[0] == 200
        gevent.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "webmini.access"]
    assert any('"GET /logged?x=1 HTTP/1.1" 200' in line for line in lines), lines


def test_upgraded_connection_gets_nothing_more(dev_server):
    def app(environ, start_response):
        handler = environ["webmini.pywsgi_handler"]
        handler.socket.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw")
        environ["webmini.upgraded"] = True
        return []

    server = dev_server(app)
    sock = socket.create_connection(("127.0.0.1", server.server_port))
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
    data = _recv_all(sock)
    sock.close()
    assert data == b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw"


def test_exception_escaping_a_plain_wsgi_app_is_500_and_logged(dev_server, caplog):
    def app(environ, start_response):
        raise RuntimeError("plain app broke")

    server = dev_server(app)
    with caplog.at_level(logging.ERROR, logger="webmini.serving.devserver"):
        status, body = _get(server.server_port, "/x")
    assert status == 500 and b"plain app broke" not in body
    assert any("plain app broke" in (r.exc_text or "") or r.exc_info for r in caplog.records)


# -- debug page --------------------------------------------------------------------

DEBUG_APP = """
import webmini as web

class Boom:
    def GET(self):
        secret_local = "<img src=x onerror=alert(2)>"
        raise ValueError("<script>alert(1)</script>")

app = web.application(("/boom", "Boom"), globals())
"""


def test_debug_page_only_with_debug_on_and_escaped(webmini_run, tmp_path):
    (tmp_path / "boomapp.py").write_text(DEBUG_APP)
    evil = {"X-Evil": "<b>bold</b>"}
    off = webmini_run("boomapp:app")
    status, body = _get(off.port, "/boom?q=<i>", evil)
    assert status == 500
    assert b"Traceback" not in body and b"ValueError" not in body and b"<script>" not in body

    on = webmini_run("boomapp:app", "--debug")
    status, body = _get(on.port, "/boom?q=<i>", evil)
    page = body.decode()
    assert status == 500
    assert "ValueError" in page and "Traceback" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # a frame local, escaped
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # a request header, escaped
    assert "q=&lt;i&gt;" in page
    for raw in ("<script>alert", "<img src=x", "<b>bold", "<i>"):
        assert raw not in page


def test_debug_page_render_escapes_everything():
    try:
        raise KeyError("\"'><svg onload=x>")
    except KeyError:
        import sys

        page = render(sys.exc_info(), {"REQUEST_METHOD": "GET", "PATH_INFO": "/<q>",
                                       "HTTP_COOKIE": "a=<c>", "wsgi.input": object()})
    assert "<svg" not in page and "<q>" not in page and "<c>" not in page
    assert "&lt;svg onload=x&gt;" in page and "KeyError" in page


def test_debug_flag_in_process(dev_server):
    class Boom:
        def GET(self):
            raise ValueError("<u>x</u>")

    app = web.application(("/boom", Boom), {})
    server = dev_server(app.wsgifunc())
    saved = config.debug
    try:
        config.debug = False
        status, body = _get(server.server_port, "/boom")
        assert status == 500 and b"ValueError" not in body
        config.debug = True
        status, body = _get(server.server_port, "/boom")
        assert status == 500 and b"&lt;u&gt;x&lt;/u&gt;" in body and b"<u>" not in body
    finally:
        config.debug = saved


# -- reload and workers --------------------------------------------------------------

VERSIONED_APP = """
def app(environ, start_response):
    body = b"{version}"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def test_reloader_picks_up_an_edited_file(webmini_run, tmp_path):
    module = tmp_path / "reloadme.py"
    module.write_text(VERSIONED_APP.format(version="v1"))
    server = webmini_run("reloadme:app", "--reload")
    assert _get(server.port, "/") == (200, b"v1")
    time.sleep(0.5)  # let the watcher settle
    module.write_text(VERSIONED_APP.format(version="v2"))
    deadline = time.monotonic() + 20
    next_save = time.monotonic() + 2.0
    body = b""
    while time.monotonic() < deadline:
        try:
            body = _get(server.port, "/")[1]
        except (ConnectionError, http.client.HTTPException):
            body = b""
        if body == b"v2":
            break
        if time.monotonic() >= next_save:  # the watch may not have been armed yet: save again
            module.write_text(VERSIONED_APP.format(version="v2"))
            next_save = time.monotonic() + 2.0
        time.sleep(0.2)
    assert body == b"v2", server.output()
    assert "reloading (reloadme.py)" in server.output()


BLOCKING_PID_APP = """
import os
from gevent import monkey

_real_sleep = monkey.get_original("time", "sleep")

def app(environ, start_response):
    # Hold this process (not just this greenlet): concurrent requests must
    # then be accepted by the other worker.
    _real_sleep(0.2)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def test_two_workers_serve_from_two_pids(webmini_run, tmp_path):
    (tmp_path / "pidapp.py").write_text(BLOCKING_PID_APP)
    server = webmini_run("pidapp:app", "--workers", "2")
    pids: set[int] = set()
    # One worker may accept a whole burst before the other wakes: bursts until both
    # have answered (a worker that never accepts fails the test).
    for _ in range(10):
        jobs = [gevent.spawn(_get, server.port, f"/{i}") for i in range(6)]
        gevent.joinall(jobs, timeout=15, raise_error=True)
        pids |= {int(job.value[1]) for job in jobs}
        if len(pids) >= 2:
            break
    assert len(pids) == 2, server.output()
    assert server.proc.pid not in pids  # the supervisor only supervises


SLOW_APP = """
import time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(float(environ["QUERY_STRING"] or "1.5"))
    body = b"done " + environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def _start_slow(webmini_run, tmp_path, *args):
    (tmp_path / "slow_app.py").write_text(SLOW_APP)
    return webmini_run("slow_app:app", *args, cwd=tmp_path)


def _send(port, path):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return sock


def test_sigterm_lets_in_flight_requests_finish(webmini_run, tmp_path):
    """SIGTERM: the slow request in flight gets its response; idle keep-alive ends; then exit."""
    server = _start_slow(webmini_run, tmp_path, "--graceful-timeout", "5")
    idle = _send(server.port, "/fast")  # a keep-alive connection, idle after its response
    got = b""
    while not got.endswith(b"done /fast"):
        chunk = idle.recv(1000)
        assert chunk, got
        got += chunk
    slow = _send(server.port, "/slow?1.5")
    time.sleep(0.3)  # the slow request is in the handler now
    started = time.monotonic()
    server.proc.terminate()
    reply = _recv_all(slow)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"done /slow"), reply
    assert b"Connection: close" in reply
    assert idle.recv(1000) == b""  # the idle connection was closed, not left hanging
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5  # it did not wait out the grace period
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)


def _accept_queue(port: int) -> int:
    """Connections the kernel holds for accept() on the listening socket at ``port``."""
    with open("/proc/net/tcp") as table:
        lines = table.read().splitlines()[1:]
    for line in lines:
        fields = line.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
            return int(queues.split(":")[1], 16)  # rx_queue of a listener: its accept queue
    raise AssertionError(f"nothing listens on port {port}")


def _wait_accepted(port: int) -> None:
    """Until the server has accepted every connection made to ``port`` (bounded: 10 s)."""
    deadline = time.monotonic() + 10
    while _accept_queue(port):
        assert time.monotonic() < deadline, "the server accepts nothing"
        time.sleep(0.02)


def test_sigterm_serves_a_connection_accepted_before_its_request_arrived(webmini_run, tmp_path):
    """A connection the server accepted is not idle: when SIGTERM (a reload, a restart)
    comes before its request, the request is still answered (it was closed unanswered)."""
    server = _start_slow(webmini_run, tmp_path, "--graceful-timeout", "5")
    fresh = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    _wait_accepted(server.port)  # accepted: its handler waits for the request line
    time.sleep(0.1)
    server.proc.terminate()
    server.wait_for_output("stopping")
    fresh.sendall(b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n")
    reply = _recv_all(fresh)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"done /fast"), reply
    assert b"Connection: close" in reply
    assert server.proc.wait(10) == 0


def test_sigterm_grace_is_bounded(webmini_run, tmp_path):
    """A request slower than the grace period is cut off: the process still exits in time."""
    server = _start_slow(webmini_run, tmp_path, "--graceful-timeout", "1")
    slow = _send(server.port, "/slow?30")
    time.sleep(0.3)
    started = time.monotonic()
    server.proc.terminate()
    assert server.proc.wait(10) == 0
    assert 0.8 < time.monotonic() - started < 5
    assert _recv_all(slow) == b""  # cut off: no half response
    assert "cut off" in server.wait_for_output("cut off")
