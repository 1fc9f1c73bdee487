"""webmini under real uWSGI started with the repository's uwsgi.ini (gevent workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import gevent
import gevent.pool
import pytest
from support import free_port
from support.servers import UwsgiServer, http_get, write_probe_app

from localservices import process_state

# Every test here runs uWSGI, some without the start_uwsgi fixture.
pytestmark = pytest.mark.uwsgi

StartUwsgi = Callable[..., UwsgiServer]


# ---------------------------------------------------------------- responses


def test_hello_routes(uwsgi_hello: UwsgiServer) -> None:
    """Every route of examples/hello.py answers over the HTTP socket."""
    r = uwsgi_hello.get("/")
    assert (r.status, r.body) == (200, b"Hello, world!")
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-length"] == "13"

    r = uwsgi_hello.get("/json")
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {"message": "Hello, world!", "framework": "webmini"}

    assert uwsgi_hello.get("/users/42").json() == {"id": 42, "name": "user42"}
    assert uwsgi_hello.get("/users/abc").status == 404
    assert uwsgi_hello.get("/nowhere").status == 404

    r = uwsgi_hello.get("/slow")
    assert (r.status, r.body) == (200, b"slow")

    r = uwsgi_hello.get("/", method="POST")
    assert r.status == 405 and "GET" in r.headers["allow"]


def test_config_is_applied(uwsgi_hello: UwsgiServer) -> None:
    """uwsgi.ini's settings are live: workers, gevent cores, backlog, both sockets."""
    stats = uwsgi_hello.stats()
    workers = stats["workers"]
    assert len(workers) == 2
    assert all(len(w["cores"]) == 1000 for w in workers)  # gevent = 1000 per worker
    assert all(w["apps"] for w in workers)  # lazy-apps: every worker loaded the app
    names = {s["name"] for s in stats["sockets"]}
    assert {uwsgi_hello.http_address, uwsgi_hello.socket_address} <= names
    log = uwsgi_hello.log_text()
    assert "listen backlog is limited to 4096 connections" in log
    assert "running gevent loop engine" in log
    assert "thunder lock: enabled" in log
    assert "http11" not in log


def test_monkey_patching_precedes_app_import(start_uwsgi: StartUwsgi, tmp_path: Path) -> None:
    """gevent-early-monkey-patch: socket, threading and time are patched before the app imports."""
    server = start_uwsgi(processes=1, env=write_probe_app(tmp_path))
    setup = server.get("/setup").json()
    assert setup["patched_at_import"] == {"socket": True, "threading": True, "time": True}


def test_environment_overrides(start_uwsgi: StartUwsgi, tmp_path: Path) -> None:
    """WEBMINI_PROCESSES, WEBMINI_GEVENT and WEBMINI_LISTEN override the defaults."""
    server = start_uwsgi(processes=1, gevent=50, listen=128)
    stats = server.stats()
    assert len(stats["workers"]) == 1
    assert len(stats["workers"][0]["cores"]) == 50
    assert "listen backlog is limited to 128 connections" in server.log_text()


def test_uwsgi_protocol_socket(uwsgi_hello: UwsgiServer) -> None:
    """The uwsgi-protocol socket (nginx's side) answers a raw uwsgi packet."""
    def encode(value: str) -> bytes:
        raw = value.encode()
        return len(raw).to_bytes(2, "little") + raw

    variables = {"REQUEST_METHOD": "GET", "PATH_INFO": "/users/7", "QUERY_STRING": "",
                 "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                 "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost"}
    body = b"".join(encode(k) + encode(v) for k, v in variables.items())
    packet = bytes([0]) + len(body).to_bytes(2, "little") + bytes([0]) + body
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(uwsgi_hello.socket_address)
        s.sendall(packet)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert payload == b'{"id":7,"name":"user7"}'


# ---------------------------------------------------------------- concurrency


def test_one_worker_serves_1000_waiting_requests_at_once(start_uwsgi: StartUwsgi) -> None:
    """1,000 requests that each wait 100 ms finish in well under a second on ONE worker.

    Served one after another they would take 100 s; the bound proves the
    worker runs them concurrently in greenlets.
    """
    server = start_uwsgi(processes=1)
    pool = gevent.pool.Pool(1000)
    started = time.monotonic()
    replies = pool.map(lambda _: server.get("/slow", timeout=30).status, range(1000))
    elapsed = time.monotonic() - started
    assert Counter(replies) == {200: 1000}
    assert elapsed < 1.0, f"1000 x 100 ms on one gevent worker took {elapsed:.2f} s"


# ---------------------------------------------------------------- robustness


def test_exception_in_handler_keeps_the_worker(start_uwsgi: StartUwsgi) -> None:
    """A handler that raises gets a 500; the same worker process answers afterwards."""
    server = start_uwsgi(processes=1)
    pid = server.get("/pid").text
    for _ in range(3):
        r = server.get("/boom")
        assert r.status == 500
        assert b"boom" not in r.body  # no traceback sent to the client (debug off)
    assert server.get("/pid").text == pid
    assert server.get("/").status == 200
    assert [str(p) for p in server.worker_pids()] == [pid]
    assert server.stats()["workers"][0]["respawn_count"] == 1  # never respawned
    assert "RuntimeError: boom" in server.log_text()  # logged with its traceback


def _steady_load(port: int, results: list[int | str], stop: list[bool]) -> None:
    while not stop:
        for path in ("/slow", "/"):
            try:
                results.append(http_get(port, path, timeout=30).status)
            except Exception as exc:  # every failure is recorded, never raised
                results.append(repr(exc))


@pytest.mark.slow
def test_graceful_reloads_under_load_fail_no_request(start_uwsgi: StartUwsgi) -> None:
    """SIGHUP to the master, then touch, under 40 clients: chain reloads, every request succeeds."""
    server = start_uwsgi(processes=2)
    results: list[int | str] = []
    stop: list[bool] = []
    clients = [gevent.spawn(_steady_load, server.http_port, results, stop) for _ in range(40)]
    try:
        gevent.sleep(0.5)
        generations = [sorted(server.worker_pids())]
        for chains, trigger in enumerate((server.reload, server.touch), 1):
            before = len(results)
            trigger()
            assert server.wait_ready(30, exclude_pids=generations[-1]), server.log_tail()
            # uWSGI ignores a chain reload asked for while one runs: wait for its end.
            deadline = time.monotonic() + 30
            while server.log_text().count("chain reloading complete") < chains:
                assert time.monotonic() < deadline, server.log_tail()
                gevent.sleep(0.1)
            generations.append(sorted(server.worker_pids()))
            gevent.sleep(0.5)
            assert len(results) > before  # traffic kept flowing through the reload
    finally:
        stop.append(True)
        gevent.joinall(clients, timeout=30)
    assert not set(generations[0]) & set(generations[1])  # all workers replaced by SIGHUP
    assert not set(generations[1]) & set(generations[2])  # ... and by touch-reload
    assert server.pid and server.running  # the master survived both
    counts = Counter(results)
    assert set(counts) == {200}, counts
    assert counts[200] > 200
    log = server.log_text()
    # A worker at a time (chain reload), never the whole instance.
    assert "binary reloading" not in log and "gracefully (RE)spawned" not in log
    assert log.count("chain next victim") == 4


def test_sigterm_stops_everything(start_uwsgi: StartUwsgi) -> None:
    """die-on-term: SIGTERM stops the master and its workers (no reload), port closed."""
    server = start_uwsgi(processes=2)
    workers = server.worker_pids()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(15) == 0
    for pid in workers:
        assert process_state(pid) in ("Z", "X")
    try:
        http_get(server.http_port, "/", timeout=1)
        raise AssertionError("the HTTP socket still answers after SIGTERM")
    except OSError:
        pass


def test_need_app_refuses_to_start_without_the_app(tmp_path: Path) -> None:
    """need-app: a module that cannot be imported makes uWSGI exit instead of serving 500s."""
    server = UwsgiServer(tmp_path, module="no_such_module_here:application", processes=1)
    server.http_port, server.socket_port, server.stats_port = free_port(), free_port(), free_port()
    proc = subprocess.run(server.command(), env=server.environment(), cwd=tmp_path,
                          capture_output=True, timeout=30)
    assert proc.returncode != 0
    assert b"no_such_module_here" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- scripts/serve.sh


@pytest.mark.slow
def test_serve_script_serves_the_example_and_stops_on_sigterm(tmp_path: Path) -> None:
    """README's first command: scripts/serve.sh sets up, serves uwsgi.ini, stops on SIGTERM."""
    root = Path(__file__).resolve().parent.parent
    port = free_port()
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(tmp_path),
        "WEBMINI_HTTP": f"127.0.0.1:{port}",
        "WEBMINI_SOCKET": str(tmp_path / "uwsgi.sock"),
        "WEBMINI_STATS": f"127.0.0.1:{free_port()}",
        "WEBMINI_PROCESSES": "2",
        "WEBMINI_TOUCH_RELOAD": str(tmp_path / "reload"),
    }
    log = (tmp_path / "serve.log").open("wb")
    # From another directory, as a newcomer might.
    proc = subprocess.Popen([str(root / "scripts" / "serve.sh")], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180  # the set-up step may run pip
        reply = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                reply = http_get(port, "/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        assert reply is not None, (tmp_path / "serve.log").read_text()[-3000:]
        assert (reply.status, reply.body) == (200, b"Hello, world!")
        assert http_get(port, "/slow").body == b"slow"
        proc.send_signal(signal.SIGTERM)  # die-on-term: stop, not reload
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert "webmini: serving examples.hello:application" in (tmp_path / "serve.log").read_text()
