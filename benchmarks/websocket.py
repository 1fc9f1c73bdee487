"""WebSocket benchmark: 10,000 idle connections on one worker, then one broadcast to all.

For each server (webmini on uWSGI + gevent, webmini on the dev server, and
the ``websockets`` package on asyncio) it reports the server process's RSS
growth per connection and the time from sending a broadcast trigger until
the last of the 10,000 clients has the message. Clients run in separate
processes (gevent + raw sockets, a few hundred bytes each).

    .venv/bin/python benchmarks/websocket.py [--connections 10000] [--clients 4]

This file is also the uWSGI application (``--wsgi-file``) and the two other
servers (``--serve-dev PORT``, ``--serve-websockets PORT``).
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from localservices import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
UWSGI = str(Path(PYTHON).with_name("uwsgi"))
PAYLOAD = "x" * 64
FD_LIMIT = 65536


def raise_fd_limit() -> None:
    """Allow enough descriptors for 10,000 sockets plus headroom (we are root in CI)."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the webmini application (uWSGI loads this file; the dev server imports it) --

def make_app() -> Any:
    """One group of idle members; the message "go" broadcasts PAYLOAD to all of them."""
    import webmini as web

    class Member(web.WebSocket):
        ping_interval = None  # idle connections: measure memory, not ping traffic

        def on_open(self) -> None:
            self.join("all")

        def on_message(self, data: str | bytes) -> None:
            if data == "go":
                self.broadcast("all", PAYLOAD)

    class Pid:
        def GET(self) -> str:
            return str(os.getpid())

    return web.application(("/ws", Member, "/pid", Pid), {}).wsgifunc()


if __name__.startswith("uwsgi_file_") or "uwsgi" in sys.modules:
    application = make_app()


def serve_dev(port: int) -> None:
    """webmini's dev server, one process."""
    from gevent import monkey

    monkey.patch_all()
    raise_fd_limit()
    from webmini.serving.devserver import make_server

    server = make_server(make_app(), ("127.0.0.1", port), pool_size=50000)
    server.serve_forever()


def serve_websockets(port: int) -> None:
    """The ``websockets`` package (asyncio), one process: same protocol as make_app."""
    import asyncio

    import websockets
    from websockets.asyncio.server import serve

    raise_fd_limit()
    members: set[Any] = set()

    async def handler(ws: Any) -> None:
        if ws.request.path == "/pid":
            return
        members.add(ws)
        try:
            async for message in ws:
                if message == "go":
                    websockets.broadcast(members, PAYLOAD)
        finally:
            members.discard(ws)

    def pid_route(connection: Any, request: Any) -> Any:
        if request.path == "/pid":
            return connection.respond(200, str(os.getpid()))
        return None

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, ping_interval=None,
                         process_request=pid_route, backlog=4096, compression=None):
            await asyncio.Future()

    asyncio.run(main())


# -- clients (separate processes) ------------------------------------------------

def handshake(port: int) -> Any:
    """Open one WebSocket connection with a hand-written handshake; return the socket."""
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    return sock


def run_clients(port: int, count: int, rounds: int) -> None:
    """Hold ``count`` connections; print when ready and when each broadcast arrived."""
    from gevent import monkey

    monkey.patch_all()
    raise_fd_limit()
    import gevent
    from gevent.pool import Pool

    socks: list[Any] = []
    pool = Pool(100)  # concurrent handshakes
    for sock in pool.imap_unordered(lambda _: handshake(port), range(count)):
        socks.append(sock)
    got: list[list[float]] = [[] for _ in range(rounds)]

    def reader(sock: Any) -> None:
        for r in range(rounds):
            data = b""
            while len(data) < 2 + len(PAYLOAD):
                chunk = sock.recv(4096)
                if not chunk:
                    return
                data += chunk
            got[r].append(time.monotonic())

    readers = [gevent.spawn(reader, s) for s in socks]
    print("ready", flush=True)
    for r in range(rounds):
        while len(got[r]) < count:
            gevent.sleep(0.005)
        print("got", r, max(got[r]), flush=True)
    sys.stdin.read()  # hold the connections until the driver is done
    gevent.killall(readers)


# -- the driver --------------------------------------------------------------------

def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def http_pid(port: int) -> int:
    """GET /pid from the server: the pid of the process holding the connections."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /pid HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            return int(data.split(b"\r\n\r\n", 1)[1])
        except (OSError, ValueError, IndexError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_server(kind: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start one of the three servers on ``port``."""
    if kind == "uwsgi":
        # 1000 async cores (uwsgi.ini's figure) for 10,000 connections: an open
        # WebSocket holds no core once its upgrade request has returned.
        cmd = [UWSGI, "--http-socket", f"127.0.0.1:{port}", "--gevent", "1000",
               "--gevent-early-monkey-patch", "--master", "--processes", "1", "--lazy-apps",
               "--listen", "4096", "--max-fd", str(FD_LIMIT), "--pythonpath", str(ROOT),
               "--wsgi-file", __file__, "--need-app", "--die-on-term", "--disable-logging",
               "--logto", str(log), *os.environ.get("WEBMINI_BENCH_UWSGI_ARGS", "").split()]
    elif kind == "dev":
        cmd = [PYTHON, __file__, "--serve-dev", str(port)]
    else:
        cmd = [PYTHON, __file__, "--serve-websockets", str(port)]
    out = log.open("ab")
    return subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                            preexec_fn=raise_fd_limit, cwd=ROOT)


def trigger(port: int) -> tuple[Any, float]:
    """Open a control connection and send "go"; return it and the send time."""
    sock = handshake(port)
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(b"go"))
    t0 = time.monotonic()
    sock.sendall(bytes((0x81, 0x80 | 2)) + mask + body)
    return sock, t0


def bench(kind: str, connections: int, clients: int, rounds: int, tmp: Path) -> dict[str, Any]:
    """Run one server through the benchmark; return its figures."""
    port = free_port()
    server = start_server(kind, port, tmp / f"{kind}.log")
    procs: list[subprocess.Popen[str]] = []
    try:
        pid = http_pid(port)
        time.sleep(0.5)
        rss0 = rss_kb(pid)
        per = connections // clients
        started = time.monotonic()
        for i in range(clients):
            n = per if i < clients - 1 else connections - per * (clients - 1)
            procs.append(subprocess.Popen(
                [PYTHON, __file__, "--client", str(port), str(n), str(rounds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                preexec_fn=raise_fd_limit))
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"client failed: {line!r}")
        connect_s = time.monotonic() - started
        time.sleep(1.0)
        rss1 = rss_kb(pid)
        times = []
        for r in range(rounds):
            control, t0 = trigger(port)
            last = 0.0
            for p in procs:
                assert p.stdout is not None
                parts = p.stdout.readline().split()
                if parts[:2] != ["got", str(r)]:
                    raise RuntimeError(f"client failed: {parts!r}")
                last = max(last, float(parts[2]))
            times.append(last - t0)
            control.close()
            time.sleep(0.3)
        return {
            "server": kind, "connections": connections, "connect_s": round(connect_s, 1),
            "rss_idle_mb": round(rss0 / 1024, 1), "rss_mb": round(rss1 / 1024, 1),
            "kb_per_conn": round((rss1 - rss0) / connections, 1),
            "broadcast_ms": [round(t * 1000) for t in times],
            "broadcast_median_ms": round(statistics.median(times) * 1000),
        }
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    """Parse the command line: drive the benchmark, or play one of its roles."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--rounds", type=int, default=3, help="broadcasts to time")
    parser.add_argument("--servers", default="uwsgi,dev,websockets")
    parser.add_argument("--serve-dev", type=int, metavar="PORT")
    parser.add_argument("--serve-websockets", type=int, metavar="PORT")
    parser.add_argument("--client", nargs=3, type=int, metavar=("PORT", "N", "ROUNDS"))
    args = parser.parse_args()
    if args.serve_dev:
        return serve_dev(args.serve_dev)
    if args.serve_websockets:
        return serve_websockets(args.serve_websockets)
    if args.client:
        return run_clients(*args.client)
    raise_fd_limit()
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="wsbench-"))
    print(f"# {args.connections} connections, {args.clients} client processes, "
          f"{os.cpu_count()} CPUs; logs in {tmp}", flush=True)
    print("| server | connect (s) | RSS idle -> loaded (MB) | KB/connection | "
          "broadcast to all (ms, median of runs) |")
    print("|---|---|---|---|---|", flush=True)
    for kind in args.servers.split(","):
        r = bench(kind, args.connections, args.clients, args.rounds, tmp)
        print(f"| {kind} | {r['connect_s']} | {r['rss_idle_mb']} -> {r['rss_mb']} | "
              f"{r['kb_per_conn']} | {r['broadcast_median_ms']} {r['broadcast_ms']} |",
              flush=True)


if __name__ == "__main__":
    main()
