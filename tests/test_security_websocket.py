"""WebSocket attacks against uWSGI started from uwsgi.ini (and nginx in front of it).

* a member that never reads while 1 MiB broadcasts pile up: the queue is
  bounded in bytes and the member is dropped (1008);
* a broadcast larger than one unix datagram still reaches the other worker;
* an Origin on the same host but another port or scheme is refused, also
  behind nginx, whose ``$host`` drops the port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import websocket  # websocket-client
from support.servers import NginxServer, UwsgiServer

from webmini.realtime.fanout import UnixFanout

StartUwsgi = Callable[..., UwsgiServer]
StartNginx = Callable[[str], NginxServer]
TESTS = Path(__file__).resolve().parent


def _app_env(**extra: str) -> dict[str, str]:
    return {"WEBMINI_MODULE": "ws_security_app:application", "PYTHONPATH": str(TESTS), **extra}


@contextmanager
def _stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_slow_member_is_dropped_by_queued_bytes(start_uwsgi: StartUwsgi) -> None:
    """150 broadcasts of 1 MiB to a member that never reads: bounded memory, member dropped."""
    server = start_uwsgi(processes=1, env=_app_env())
    ws = websocket.create_connection(
        f"ws://{server.http_address}/flood", timeout=10,
        sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    try:
        ws.send("150")
        deadline = time.monotonic() + 30
        result: dict[str, object] = {}
        while time.monotonic() < deadline and not result:
            time.sleep(0.2)
            result = server.get("/flood-stats").json()
    finally:
        ws.sock.close()
    assert result, "the flood did not finish"
    # Dropped with 1008 long before 150 MiB could pile up for it.
    assert result["open"] is False and result["close_code"] == 1008
    assert int(result["peak_queued"]) <= 5 << 20  # type: ignore[call-overload]
    assert int(result["delivered"]) < 10  # type: ignore[call-overload]
    assert int(result["maxrss_growth_kb"]) < 64 * 1024  # type: ignore[call-overload]


def test_broadcast_of_1_mib_reaches_the_other_worker(
        start_uwsgi: StartUwsgi, tmp_path: Path) -> None:
    """A 1 MiB broadcast (the default max_message_size) crosses workers, in datagram chunks."""
    fanout = tmp_path / "fanout"
    server = start_uwsgi(processes=2, env=_app_env(WS_FANOUT_DIR=str(fanout)))

    def join() -> tuple[websocket.WebSocket, int]:
        c = websocket.create_connection(f"ws://{server.http_address}/room", timeout=10)
        return c, json.loads(c.recv())["pid"]

    first, first_pid = join()
    with _stopped(first_pid):
        second, second_pid = join()
    assert second_pid != first_pid
    message = "m" * ((1 << 20) - 64)
    first.send(message)
    assert second.recv() == message
    assert first.recv() == message
    assert stat.S_IMODE(os.lstat(fanout).st_mode) == 0o700
    first.close()
    second.close()


def _handshake(port: int, host: str, origin: str) -> int:
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/room", timeout=10,
                                         host=host, origin=origin)
    except websocket.WebSocketBadStatusException as exc:
        return int(exc.status_code)
    ws.close()
    return 101


def test_origin_compares_scheme_host_and_port_behind_nginx(
        start_uwsgi: StartUwsgi, start_nginx: StartNginx) -> None:
    """nginx passes ``$host`` without the port: another port on the host is still refused."""
    server = start_uwsgi(processes=1, env=_app_env())
    nginx = start_nginx(server.socket_address)
    host = f"127.0.0.1:{nginx.port}"
    assert _handshake(nginx.port, host, f"http://{host}") == 101
    assert _handshake(nginx.port, host, f"http://127.0.0.1:{nginx.port}/") == 101
    assert _handshake(nginx.port, host, "http://127.0.0.1") == 403      # port 80
    assert _handshake(nginx.port, host, "http://127.0.0.1:1") == 403
    assert _handshake(nginx.port, host, f"https://{host}") == 403       # scheme
    assert _handshake(nginx.port, host, f"http://evil.example:{nginx.port}") == 403
    assert _handshake(nginx.port, host, "null") == 403
    # Straight to uWSGI's http-socket: the same rules.
    direct = server.http_address
    assert _handshake(server.http_port, direct, f"http://{direct}") == 101
    assert _handshake(server.http_port, direct, "http://127.0.0.1") == 403


# -- the fan-out directory --------------------------------------------------------


def test_fanout_refuses_a_symlinked_or_shared_directory(tmp_path: Path) -> None:
    """A symlink planted at the path, or a directory others may enter, is refused."""
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o700)
    planted = tmp_path / "planted"
    planted.symlink_to(elsewhere)
    with pytest.raises(PermissionError):
        UnixFanout(str(planted)).ensure_started(lambda *a: None)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError):
        UnixFanout(str(shared)).ensure_started(lambda *a: None)
    assert list(elsewhere.iterdir()) == []


def test_fanout_ignores_a_directory_swapped_after_start(tmp_path: Path) -> None:
    """Re-pointing the path after start sends nothing to the attacker's socket."""
    path = tmp_path / "fan"
    a = UnixFanout(str(path))
    a.ensure_started(lambda *m: None)
    # Another worker of the node: a socket of ours in the directory.
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    peer.bind(str(path / "1.sock"))
    # The attacker renames the directory away and puts their own in its place,
    # with a socket of theirs inside.
    os.rename(path, tmp_path / "fan.old")
    attacker_dir = tmp_path / "evil"
    attacker_dir.mkdir(mode=0o700)
    os.symlink(attacker_dir, path)
    spy = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    spy.bind(str(attacker_dir / "999999.sock"))
    spy.setblocking(False)
    try:
        a.publish("room", 1, b"secret")
        peer.settimeout(5)
        assert peer.recv(1024).endswith(b"room" + b"secret")
        with pytest.raises(BlockingIOError):
            spy.recv(1024)
    finally:
        spy.close()
        peer.close()
        a.stop()
