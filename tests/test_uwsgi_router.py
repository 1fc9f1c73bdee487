"""uwsgi.ini's keep-alive HTTP router (WEBMINI_HTTP_ROUTER=N), on real uWSGI.

The router is uWSGI's own C front process: it keeps client connections alive
and passes each request to the gevent workers over the uwsgi unix socket.
These tests check what a client of it relies on: many requests on one
connection, the client's address, bodies both ways and streamed responses.
tests/test_exposure.py checks that it stays on loopback like the http-socket.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
from collections.abc import Iterator

import pytest
from support.servers import UwsgiServer

pytestmark = pytest.mark.uwsgi

ROUTER_APP = '''\
"""A small app for the router tests."""
import hashlib
import json

import webmini as web

urls = ("/env", "Env", "/echo", "Echo", "/stream", "Stream", "/ws", "WsEcho")


class Env:
    def GET(self):
        e = web.ctx.environ
        return {"addr": e.get("REMOTE_ADDR"), "port": e.get("REMOTE_PORT"), "pid": __import__("os").getpid()}


class Echo:
    def POST(self):
        body = web.data()
        return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


class Stream:
    def GET(self):
        web.header("Content-Type", "text/plain")
        def chunks():
            for i in range(50):
                yield ("line %d\\n" % i).encode()
        return chunks()


class WsEcho(web.WebSocket):
    ping_interval = None

    def on_message(self, data):
        self.send(data)


application = web.application(urls, globals()).wsgifunc()
'''


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UwsgiServer]:
    """uwsgi.ini with WEBMINI_HTTP_ROUTER=2 serving ROUTER_APP (2 workers)."""
    workdir = tmp_path_factory.mktemp("uwsgi-router")
    (workdir / "router_app.py").write_text(ROUTER_APP)
    server = UwsgiServer(workdir, module="router_app:application",
                         env={"WEBMINI_HTTP_ROUTER": "2", "WEBMINI_ACCESS_LOG": "0"},
                         name="router")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _connection(server: UwsgiServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)


def test_router_processes_run(router: UwsgiServer) -> None:
    """Two router processes beside the workers, as WEBMINI_HTTP_ROUTER=2 asks."""
    children = subprocess.run(["ps", "-o", "args=", "--ppid", str(router.pid)],
                              capture_output=True, text=True, check=True).stdout
    assert children.count("uWSGI http") == 2, children


def test_requests_share_one_connection(router: UwsgiServer) -> None:
    """Keep-alive: five requests on one TCP connection, the client's own address and port."""
    conn = _connection(router)
    try:
        conn.connect()
        sock = conn.sock
        ports = set()
        for _ in range(5):
            conn.request("GET", "/env")
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.getheader("Connection", "").lower() != "close"
            seen = json.loads(resp.read())
            assert seen["addr"] == "127.0.0.1"
            ports.add(seen["port"])
            assert conn.sock is sock  # http.client reconnects silently if the server closed
        # One client port for all five. (uWSGI 2.0's router passes REMOTE_PORT in
        # network byte order, so it is not compared with the socket's own.)
        assert len(ports) == 1
    finally:
        conn.close()


def test_bodies_both_ways(router: UwsgiServer) -> None:
    """A 1 MiB request body reaches the app whole; the next request on the connection works."""
    body = os.urandom(1 << 20)
    conn = _connection(router)
    try:
        conn.request("POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read()) == {"length": len(body),
                                           "sha256": hashlib.sha256(body).hexdigest()}
        conn.request("GET", "/env")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_streamed_response_is_chunked_and_the_connection_survives(router: UwsgiServer) -> None:
    """A body without Content-Length arrives whole (chunked by the router), then the
    connection serves the next request."""
    conn = _connection(router)
    try:
        conn.request("GET", "/stream")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Transfer-Encoding", "").lower() == "chunked"
        assert resp.read() == b"".join(b"line %d\n" % i for i in range(50))
        sock = conn.sock
        conn.request("GET", "/env")
        assert conn.getresponse().status == 200
        assert conn.sock is sock
    finally:
        conn.close()


def test_http_10_client_gets_its_answer_and_a_close(router: UwsgiServer) -> None:
    """An HTTP/1.0 request without keep-alive is answered, then the router closes."""
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=10) as s:
        s.sendall(b"GET /env HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["addr"] == "127.0.0.1"


def test_websocket_passes_through_the_router(router: UwsgiServer) -> None:
    """A WebSocket upgrade reaches the gevent worker through the router
    (``http-websockets``) and frames flow both ways, text and binary."""
    import websocket  # websocket-client, a real client

    ws = websocket.create_connection(f"ws://127.0.0.1:{router.http_port}/ws", timeout=5)
    try:
        ws.send("hello through the router")
        assert ws.recv() == "hello through the router"
        ws.send_binary(b"\x00\x01" * 5000)
        assert ws.recv() == b"\x00\x01" * 5000
    finally:
        ws.close()
    # The router still serves plain requests afterwards.
    conn = _connection(router)
    try:
        conn.request("GET", "/env")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
