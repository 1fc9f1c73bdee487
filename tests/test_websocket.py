"""WebSocket handlers under uWSGI + gevent and under the dev server, with real clients.

The handler classes below are the application both servers run: the dev
server in this process, uWSGI by importing this module
(``--module test_websocket:app``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import greenlet
import pytest
from support import free_port

import webmini as web
from webmini.realtime import websocket as ws_mod
from webmini.realtime.fanout import UnixFanout

ROOT = Path(__file__).resolve().parent.parent
UWSGI = str(Path(sys.executable).with_name("uwsgi"))

# -- the application (served by both servers) ---------------------------------

CLOSES: list[list[Any]] = []


class Echo(web.WebSocket):
    """Echoes messages; "bye" makes the server close with 4000."""

    max_message_size = 64 * 1024
    origins = ("http://friend.example",)
    ping_interval = None

    def on_message(self, data: str | bytes) -> None:
        if data == "bye":
            self.close(4000, "bye now")
        elif data == "args":
            self.send(json.dumps(list(self.args)))
        else:
            self.send(data)

    def on_close(self, code: int, reason: str) -> None:
        CLOSES.append([code, reason])


class Pinger(web.WebSocket):
    """Pings every 0.2 s; a peer that does not answer within 0.5 s is dropped."""

    ping_interval = 0.2
    ping_timeout = 0.5

    def on_message(self, data: str | bytes) -> None:
        self.send(data)

    def on_close(self, code: int, reason: str) -> None:
        CLOSES.append([code, reason])


class Room(web.WebSocket):
    """A chat room: says which process serves it, relays messages to the room."""

    def on_open(self) -> None:
        self.join("room")
        self.send(json.dumps({"pid": os.getpid()}))

    def on_message(self, data: str | bytes) -> None:
        self.broadcast("room", data)


class Who(web.WebSocket):
    """Answers with what ``ctx`` says about the request that opened the connection."""

    ping_interval = None

    def on_message(self, data: str | bytes) -> None:
        self.send(json.dumps({
            "path": web.ctx.path, "q": web.input(q="").q, "cookie": web.cookies().get("k"),
            "ip": web.ctx.ip, "has_input": "wsgi.input" in web.ctx.env,
        }))


class Flood(web.WebSocket):
    """Sends 64 KB messages to a peer that reads nothing, until it is dropped."""

    ping_interval = None
    max_queue = 4

    def on_message(self, data: str | bytes) -> None:
        chunk = b"z" * 65536
        for _ in range(2000):
            if not self.send(chunk):
                break

    def on_close(self, code: int, reason: str) -> None:
        CLOSES.append([code, reason])


class Burst(web.WebSocket):
    """Sends 200 numbered 64 KB messages at once: more than the socket takes without waiting."""

    ping_interval = None
    max_queue_bytes = 16 << 20  # 200 x 64 KiB may wait for this reader

    def on_message(self, data: str | bytes) -> None:
        for i in range(200):
            self.send(bytes([i]) * 65536)


class Stats:
    """Connections and live greenlets of the serving process."""

    def GET(self) -> dict[str, Any]:
        gc.collect()
        greenlets = sum(
            1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and not o.dead
        )
        return {"connections": ws_mod.connections(), "greenlets": greenlets,
                "pid": os.getpid(), "room": ws_mod.group_size("room")}


class Closes:
    """The close codes ``on_close`` saw, in order."""

    def GET(self) -> list[list[Any]]:
        return CLOSES

    def DELETE(self) -> str:
        CLOSES.clear()
        return ""


class Announce:
    """A plain HTTP handler broadcasting to the room."""

    def POST(self) -> dict[str, int]:
        return {"local": web.WebSocket.broadcast("room", web.data().decode())}


urls = (
    "/echo/(\\w+)", "Echo",
    "/echo", "Echo",
    "/ping", "Pinger",
    "/room", "Room",
    "/who", "Who",
    "/flood", "Flood",
    "/burst", "Burst",
    "/stats", "Stats",
    "/closes", "Closes",
    "/announce", "Announce",
)
app = web.application(urls, globals())

if os.environ.get("WEBMINI_TEST_FANOUT"):
    ws_mod.set_fanout(UnixFanout(os.environ["WEBMINI_TEST_FANOUT"]))


# -- servers ------------------------------------------------------------------


def http_get(port: int, path: str, method: str = "GET", body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A minimal HTTP/1.0 client: (status, body)."""
    head = f"{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


class UWSGI_:
    """A private uWSGI instance (http-socket, gevent) running ``module``."""

    def __init__(self, module: str, processes: int, tmp: Path, env: dict[str, str] | None = None,
                 pythonpath: Path = ROOT / "tests", async_cores: int = 1000,
                 extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.log = tmp / f"uwsgi-{self.port}.log"
        cmd = [
            UWSGI, "--http-socket", f"127.0.0.1:{self.port}",
            "--gevent", str(async_cores), "--gevent-early-monkey-patch",
            "--master", "--processes", str(processes), "--lazy-apps",
            "--pythonpath", str(ROOT), "--pythonpath", str(pythonpath),  # ROOT: localservices
            "--module", module, "--need-app", "--die-on-term",
            "--logto", str(self.log), *(extra or []),
        ]
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})},
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                http_get(self.port, "/")  # any answer: the app is loaded (--need-app)
                return
            except OSError:
                time.sleep(0.1)
        log = self.log.read_text() if self.log.exists() else ""
        self.stop()
        pytest.fail(f"uWSGI did not start: {log[-3000:]}")

    def stop(self) -> None:
        """Stop the instance and wait for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class DevServer_:
    """The webmini dev server, in this process."""

    def __init__(self) -> None:
        from webmini.serving.devserver import make_server

        self.server = make_server(app.wsgifunc(), ("127.0.0.1", 0))
        self.server.start()
        self.port = self.server.server_port

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop(timeout=2)


class Gunicorn_:
    """gunicorn with webmini's config (gevent worker), one worker, running ``module``."""

    def __init__(self, module: str, tmp: Path) -> None:
        from support.gunicorn import GunicornServer

        self.server = GunicornServer(tmp, module, processes=1,
                                     pythonpath=[ROOT, ROOT / "tests"]).start()
        self.port = self.server.port

    def stop(self) -> None:
        """Stop the instance and wait for it."""
        self.server.stop()


@pytest.fixture(scope="module", params=["dev", "uwsgi", "gunicorn"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Each server in turn; one worker each so per-process counts are exact."""
    if request.param == "dev":
        srv: Any = DevServer_()
    elif request.param == "gunicorn":
        srv = Gunicorn_("test_websocket:app", tmp_path_factory.mktemp("gunicorn"))
    else:
        srv = UWSGI_("test_websocket:app", 1, tmp_path_factory.mktemp("uwsgi"))
    srv.kind = request.param
    yield srv
    srv.stop()


# -- clients ------------------------------------------------------------------

import websocket  # noqa: E402  (websocket-client)
from websocket import ABNF  # noqa: E402


def connect(srv: Any, path: str = "/echo", **options: Any) -> websocket.WebSocket:
    """A websocket-client connection (it sends Origin: http://127.0.0.1:<port>)."""
    return websocket.create_connection(f"ws://127.0.0.1:{srv.port}{path}", timeout=5, **options)


def stats(srv: Any) -> dict[str, Any]:
    """The /stats of the serving process."""
    status, body = http_get(srv.port, "/stats")
    assert status == 200
    return dict(json.loads(body))


def closes(srv: Any) -> list[list[Any]]:
    """What on_close saw so far."""
    return list(json.loads(http_get(srv.port, "/closes")[1]))


@contextlib.contextmanager
def worker_stopped(pid: int) -> Iterator[None]:
    """SIGSTOP a uWSGI worker for the duration, so that the other one accepts."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def wait_for(predicate: Any, timeout: float = 5.0) -> Any:
    """Poll ``predicate`` until truthy; return its value or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def close_frame(ws: websocket.WebSocket) -> tuple[int, str]:
    """Read frames until the server's close frame; return its code and reason."""
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == ABNF.OPCODE_CLOSE:
            data = frame.data
            return struct.unpack("!H", data[:2])[0], data[2:].decode()


@pytest.fixture(autouse=True)
def _clear_closes(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        http_get(srv.port, "/closes", "DELETE")


# -- tests --------------------------------------------------------------------


def test_echo_text_and_binary(server: Any) -> None:
    ws = connect(server)
    ws.send("héllo wörld")
    assert ws.recv_data() == (ABNF.OPCODE_TEXT, "héllo wörld".encode())
    ws.send_binary(b"\x00\x01\xfe\xff")
    assert ws.recv_data() == (ABNF.OPCODE_BINARY, b"\x00\x01\xfe\xff")
    # Binary that happens to be valid UTF-8 stays binary.
    ws.send_binary(b"abc")
    assert ws.recv_data() == (ABNF.OPCODE_BINARY, b"abc")
    big = os.urandom(60 * 1024)
    ws.send_binary(big)
    assert ws.recv_data() == (ABNF.OPCODE_BINARY, big)
    ws.close()


def test_url_groups_reach_the_handler(server: Any) -> None:
    ws = connect(server, "/echo/lobby")
    ws.send("args")
    assert json.loads(ws.recv()) == ["lobby"]
    ws.close()


def test_fragmented_message_with_ping_between_fragments(server: Any) -> None:
    ws = connect(server)
    ws.send_frame(ABNF.create_frame("abc", ABNF.OPCODE_TEXT, fin=0))
    ws.send_frame(ABNF.create_frame("déf".encode(), ABNF.OPCODE_CONT, fin=0))
    ws.ping("p1")  # control frames may come between fragments
    ws.send_frame(ABNF.create_frame(b"ghi", ABNF.OPCODE_CONT, fin=1))
    assert ws.recv_data(control_frame=True) == (ABNF.OPCODE_PONG, b"p1")
    assert ws.recv_data() == (ABNF.OPCODE_TEXT, "abcdéfghi".encode())
    ws.send_frame(ABNF.create_frame(b"\x01" * 40000, ABNF.OPCODE_BINARY, fin=0))
    ws.send_frame(ABNF.create_frame(b"\x02" * 20000, ABNF.OPCODE_CONT, fin=1))
    assert ws.recv_data() == (ABNF.OPCODE_BINARY, b"\x01" * 40000 + b"\x02" * 20000)
    ws.close()


def test_oversize_message_closes_1009(server: Any) -> None:
    ws = connect(server)
    ws.send_binary(b"x" * (64 * 1024 + 1))
    assert close_frame(ws)[0] == 1009
    ws.close()
    # Fragments add up: three 30 KB fragments are over the 64 KB limit too.
    ws = connect(server)
    for i, fin in enumerate((0, 0, 1)):
        opcode = ABNF.OPCODE_TEXT if i == 0 else ABNF.OPCODE_CONT
        ws.send_frame(ABNF.create_frame(b"y" * 30000, opcode, fin=fin))
    assert close_frame(ws)[0] == 1009
    ws.close()
    assert wait_for(lambda: [c for c in closes(server) if c[0] == 1009] == [[1009, "message too big"]] * 2)


def test_invalid_utf8_closes_1007(server: Any) -> None:
    ws = connect(server)
    ws.send_frame(ABNF(fin=1, opcode=ABNF.OPCODE_TEXT, data=b"\xff\xfe"))
    assert close_frame(ws)[0] == 1007
    ws.close()


def test_origin_check(server: Any) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as bad:
        connect(server, origin="http://evil.example")
    assert bad.value.status_code == 403
    # Allowed explicitly, and no Origin at all (not a browser), are accepted.
    for options in ({"origin": "http://friend.example"}, {"suppress_origin": True}):
        ws = connect(server, **options)
        ws.send("ok")
        assert ws.recv() == "ok"
        ws.close()


def test_plain_http_request_gets_426(server: Any) -> None:
    status, _ = http_get(server.port, "/echo")
    assert status == 426
    status, _ = http_get(server.port, "/echo", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "not base64 of 16 bytes"})
    assert status == 400


def test_server_initiated_close(server: Any) -> None:
    ws = connect(server)
    ws.send("bye")
    assert close_frame(ws) == (4000, "bye now")
    ws.close()
    assert wait_for(lambda: [4000, "bye now"] in closes(server))


def test_client_close_code_reaches_on_close(server: Any) -> None:
    ws = connect(server)
    ws.send("x")
    ws.recv()
    ws.close(status=4001, reason=b"leaving")
    assert wait_for(lambda: [4001, "leaving"] in closes(server))


def test_abrupt_disconnects_leave_nothing_behind(server: Any) -> None:
    before = wait_for(lambda: (s := stats(server))["connections"] == 0 and s)
    clients = [connect(server) for _ in range(20)]
    for c in clients:
        c.send("hi")
        assert c.recv() == "hi"
    assert stats(server)["connections"] == 20
    for i, c in enumerate(clients):
        if i % 2:  # half reset the connection, half just vanish with a FIN
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()
    after = wait_for(lambda: (s := stats(server))["connections"] == 0 and s)
    assert after, stats(server)
    assert after["greenlets"] <= before["greenlets"]
    assert wait_for(lambda: [c[0] for c in closes(server)] == [1006] * 20)


def test_ping_timeout_drops_a_silent_peer(server: Any) -> None:
    # A raw client that completes the handshake and never answers pings.
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    raw.sendall(
        b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    received = b""
    started = time.monotonic()
    while chunk := raw.recv(4096):
        received += chunk
    elapsed = time.monotonic() - started
    raw.close()
    assert b"101" in received.split(b"\r\n", 1)[0]
    assert b"\x89" in received  # a ping frame came, then the server hung up
    assert elapsed < 4
    # A client that answers pings stays connected through many intervals.
    ws = connect(server, "/ping")
    pings, started = 0, time.monotonic()
    while time.monotonic() - started < 1.5:
        opcode, _ = ws.recv_data(control_frame=True)  # answers each ping it reads
        pings += opcode == ABNF.OPCODE_PING
    assert pings >= 4
    ws.send("still here")
    assert ws.recv() == "still here"
    ws.close()


def test_broadcast_within_a_process(server: Any) -> None:
    clients = [connect(server, "/room") for _ in range(5)]
    for c in clients:
        json.loads(c.recv())
    clients[0].send("hello room")
    for c in clients:
        assert c.recv() == "hello room"
    status, body = http_get(server.port, "/announce", "POST", b"from http")
    assert status == 200 and json.loads(body) == {"local": 5}
    for c in clients:
        assert c.recv() == "from http"
    for c in clients:
        c.close()


@pytest.mark.uwsgi  # starts uWSGI itself
def test_broadcast_reaches_every_uwsgi_worker(tmp_path: Path) -> None:
    fanout = Path(tempfile.mkdtemp(prefix="wsfan-", dir=tmp_path))
    srv = UWSGI_("test_websocket:app", 2, tmp_path, env={"WEBMINI_TEST_FANOUT": str(fanout)})
    try:
        def join() -> tuple[websocket.WebSocket, int]:
            c = websocket.create_connection(f"ws://127.0.0.1:{srv.port}/room", timeout=5)
            return c, json.loads(c.recv())["pid"]

        first, first_pid = join()
        # A stopped worker accepts nothing: the next connections go to the other one.
        with worker_stopped(first_pid):
            others = [join() for _ in range(3)]
        clients = [first] + [c for c, _ in others] + [join()[0] for _ in range(4)]
        assert {pid for _, pid in others} - {first_pid}, "no connection on the second worker"
        clients[0].send("across workers")
        for c in clients:
            assert c.recv() == "across workers"
        clients[-1].send_binary(b"\x00bin")
        for c in clients:
            assert c.recv_data() == (ABNF.OPCODE_BINARY, b"\x00bin")
        for c in clients:
            c.close()
    finally:
        srv.stop()


def raw_handshake(port: int, path: str) -> socket.socket:
    """Open a WebSocket by hand; return the socket right after the 101 head."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return raw


def masked_text(text: str) -> bytes:
    """One client text frame (masked, as clients must)."""
    payload = text.encode()
    mask = os.urandom(4)
    return bytes((0x81, 0x80 | len(payload))) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


def test_a_frame_sent_right_after_the_handshake_is_not_lost(server: Any) -> None:
    # The server hands the connection over after the 101: nothing on the way
    # (the server's own read-ahead or drain) may swallow the first frame.
    for i in range(30):
        raw = raw_handshake(server.port, "/echo")
        raw.sendall(masked_text(f"first {i}"))
        data = b""
        while len(data) < 2 + len(f"first {i}"):
            data += raw.recv(4096)
        assert data == bytes((0x81, len(f"first {i}"))) + f"first {i}".encode()
        raw.close()


def test_ctx_in_on_message_is_the_opening_request(server: Any) -> None:
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/who?q=gevent", timeout=5,
                                     cookie="k=v1")
    ws.send("?")
    seen = json.loads(ws.recv())
    assert seen == {"path": "/who", "q": "gevent", "cookie": "v1", "ip": "127.0.0.1",
                    "has_input": False}  # the request body stream is not kept
    ws.close()


def test_a_peer_that_reads_nothing_is_dropped_with_1008(server: Any) -> None:
    raw = raw_handshake(server.port, "/flood")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    raw.sendall(masked_text("go"))
    # The server queues at most max_queue frames for us, then gives up.
    assert wait_for(lambda: [1008, "too slow"] in closes(server), timeout=10), closes(server)
    assert wait_for(lambda: stats(server)["connections"] == 0)
    raw.close()


@pytest.mark.uwsgi  # starts uWSGI itself
def test_idle_connections_hold_no_uwsgi_async_core(tmp_path: Path) -> None:
    # 5 async cores, 40 open WebSockets: each request ends with its handshake,
    # so the connections take no core and plain HTTP is still answered.
    srv = UWSGI_("test_websocket:app", 1, tmp_path, async_cores=5)
    try:
        clients = [websocket.create_connection(f"ws://127.0.0.1:{srv.port}/echo", timeout=5)
                   for _ in range(40)]
        for i, c in enumerate(clients):
            c.send(f"m{i}")
        for i, c in enumerate(clients):
            assert c.recv() == f"m{i}"
        assert stats(srv)["connections"] == 40
        for c in clients:
            c.close()
        assert wait_for(lambda: stats(srv)["connections"] == 0)
    finally:
        srv.stop()


def test_a_reloading_worker_says_going_away(tmp_path: Path) -> None:
    srv = UWSGI_("test_websocket:app", 1, tmp_path)
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{srv.port}/echo", timeout=5)
        ws.send("x")
        assert ws.recv() == "x"
        srv.proc.send_signal(signal.SIGHUP)  # graceful reload: the worker exits
        assert close_frame(ws) == (1001, "server going away")
        ws.close()
        # The new worker serves new connections.
        ws = wait_for(lambda: _try_connect(srv.port), timeout=10)
        ws.send("again")
        assert ws.recv() == "again"
        ws.close()
    finally:
        srv.stop()


def _try_connect(port: int) -> websocket.WebSocket | None:
    try:
        return websocket.create_connection(f"ws://127.0.0.1:{port}/echo", timeout=5)
    except (OSError, websocket.WebSocketException):
        return None


def test_frames_queued_for_a_slow_reader_arrive_whole_and_in_order(server: Any) -> None:
    ws = connect(server, "/burst")
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    ws.send("go")
    time.sleep(0.5)  # let the server's socket fill up and the rest queue
    for i in range(200):
        opcode, data = ws.recv_data()
        assert opcode == ABNF.OPCODE_BINARY and data == bytes([i]) * 65536
    ws.send("still open")
    for i in range(200):
        assert ws.recv_data()[1][:1] == bytes([i])
    ws.close()
