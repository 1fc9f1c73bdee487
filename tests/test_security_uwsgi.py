"""The uwsgi-protocol socket of the shipped uwsgi.ini: no code runs from a packet.

A uwsgi packet carrying ``UWSGI_FILE=exec://<command>`` (or a ``.py`` path)
with an unknown ``UWSGI_APPID`` makes uWSGI load a "dynamic app": the
command runs as the worker's user. These tests send that packet to uWSGI
started from the repository's uwsgi.ini and check that nothing runs, that
the socket is a unix socket only its group can open, and that workers do not
run as root unless told.
"""

from __future__ import annotations

import configparser
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.root import as_root
from support.servers import ROOT, UwsgiServer, free_port, stop_process

StartUwsgi = Callable[..., UwsgiServer]
pytestmark = pytest.mark.uwsgi


def _var(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "little") + raw


def uwsgi_packet(variables: dict[str, str]) -> bytes:
    """A uwsgi-protocol request (modifier1 0: Python/WSGI) carrying ``variables``."""
    body = b"".join(_var(k) + _var(v) for k, v in variables.items())
    return bytes([0]) + len(body).to_bytes(2, "little") + bytes([0]) + body


def send_packet(socket_path: str, packet: bytes) -> bytes:
    """Send one packet to a unix socket; return everything uWSGI answers."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(socket_path)
        s.sendall(packet)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def attack_packets(tmp: Path) -> list[tuple[Path, bytes]]:
    """(marker file, packet) pairs: each packet, if uWSGI obeys it, creates its marker."""
    base = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost"}
    exec_marker = tmp / "exec-ran"
    file_marker = tmp / "file-ran"
    module_marker = tmp / "module-ran"
    script = tmp / "evil_app.py"
    script.write_text(f"open({str(file_marker)!r}, 'w').write('pwned')\n"
                      "def application(e, s):\n    s('200 OK', [])\n    return [b'evil']\n")
    (tmp / "evil_module.py").write_text(
        f"open({str(module_marker)!r}, 'w').write('pwned')\n"
        "def application(e, s):\n    s('200 OK', [])\n    return [b'evil']\n")
    return [
        (exec_marker, uwsgi_packet({**base, "UWSGI_FILE": f"exec://touch {exec_marker}",
                                    "UWSGI_APPID": "x1", "SCRIPT_NAME": "/x1"})),
        (file_marker, uwsgi_packet({**base, "UWSGI_FILE": str(script),
                                    "UWSGI_APPID": "x2", "SCRIPT_NAME": "/x2"})),
        (module_marker, uwsgi_packet({**base, "UWSGI_CHDIR": str(tmp),
                                      "UWSGI_SCRIPT": "evil_module", "SCRIPT_NAME": "/x3"})),
    ]


def test_dynamic_app_packets_run_nothing(start_uwsgi: StartUwsgi, tmp_path: Path) -> None:
    """UWSGI_FILE=exec://..., a .py path or UWSGI_SCRIPT: no command, no import; the app answers."""
    server = start_uwsgi(processes=1)
    for marker, packet in attack_packets(tmp_path):
        reply = send_packet(server.socket_address, packet)
        assert not marker.exists(), f"{marker.name}: uWSGI ran code from a uwsgi packet"
        head, _, body = reply.partition(b"\r\n\r\n")
        # max-apps = 1: the dynamic app is refused; the configured app serves the request.
        assert head.startswith(b"HTTP/1.1 200") and body == b"Hello, world!", reply[:300]
    assert "cannot load more than 1 apps" in server.log_text()


def test_the_same_packets_do_run_code_without_max_apps(
        start_uwsgi: StartUwsgi, tmp_path: Path) -> None:
    """Control: the packets above are a real attack (with uWSGI's default max-apps they run)."""
    server = start_uwsgi(processes=1, args=["--max-apps", "64"])
    exec_marker, packet = attack_packets(tmp_path)[0]
    send_packet(server.socket_address, packet)
    assert exec_marker.exists()


def test_uwsgi_socket_is_unix_and_group_only(start_uwsgi: StartUwsgi, tmp_path: Path) -> None:
    """The shipped socket is a unix socket, mode 0660: another local user cannot connect."""
    ini = (ROOT / "uwsgi.ini").read_text()
    assert "set-ph = webmini_socket=/run/webmini/uwsgi.sock" in ini
    assert "set-ph = webmini_socket_group=www-data" in ini
    assert "chmod-socket = 660" in ini
    server = start_uwsgi(processes=1)
    st = os.stat(server.socket_address)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == os.getgid()
    # As nobody (not in the socket's group): connect() is refused by the kernel.
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n sys.exit(3)\n")
    os.chmod(server.workdir, 0o755)  # let nobody reach the directory, not the socket
    result = subprocess.run(
        as_root(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 "/usr/bin/python3", "-c", probe, server.socket_address]),
        capture_output=True, timeout=30)
    assert result.returncode == 3, result.stderr


def test_shipped_configs_have_no_tcp_uwsgi_socket() -> None:
    """uwsgi.ini and every deploy/node*.ini bind the uwsgi protocol on a unix socket only."""
    shipped = (ROOT / "uwsgi.ini").read_text()
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(shipped)
    assert parser["uwsgi"]["socket"] == "%(webmini_socket)"
    nodes = sorted((ROOT / "deploy").glob("node[0-9]*.ini"))
    assert nodes
    for path in [ROOT / "uwsgi.ini", *nodes]:
        # the socket's address: uwsgi.ini's placeholder (a node sets it first)
        values = re.findall(r"^set-ph = webmini_socket=([^%]\S*)$", path.read_text(), flags=re.M)
        assert values and all(v.startswith("/") for v in values), (path, values)
        if path in nodes:  # no socket of their own beside it
            assert not re.search(r"^socket\s*=", path.read_text(), flags=re.M), path
    # Every node reads uwsgi.ini, whose guards it keeps.
    common = (ROOT / "deploy" / "node-common.ini").read_text()
    assert re.search(r"^ini = %d\.\./uwsgi\.ini$", common, flags=re.M)
    assert not re.search(r"^(max-apps|chmod-socket|socket) ", common, flags=re.M)
    assert "max-apps = 1" in shipped and "chmod-socket = 660" in shipped


def _run_ini(tmp_path: Path, extra_env: dict[str, str], wait_for: str = "") -> str:
    """Start uwsgi.ini as root with ``extra_env``; return its output once it exits
    (or once ``wait_for`` appears in it: then it is stopped)."""
    server = UwsgiServer(tmp_path, processes=1)
    server.http_port, server.stats_port = free_port(), free_port()
    env = server.environment()
    env.pop("WEBMINI_ALLOW_ROOT", None)
    env.update(extra_env)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(as_root(server.command(), env), env=env, cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if wait_for and wait_for in log.read_text(errors="replace"):
                break
            time.sleep(0.1)
    finally:
        stop_process(proc, signal.SIGTERM, 15)
    text = log.read_text(errors="replace")
    return text + f"\n[exit {proc.returncode}]"


def test_refuses_to_run_as_root_unless_told(tmp_path: Path) -> None:
    """Started as root without WEBMINI_UID/WEBMINI_GID, uwsgi.ini exits before serving."""
    out = _run_ini(tmp_path, {})
    assert "[exit 0]" not in out
    assert "\nwebmini: refusing to run as root" in out
    assert "spawned uWSGI worker" not in out


def test_drops_privileges_to_the_given_user(tmp_path: Path) -> None:
    """WEBMINI_UID/WEBMINI_GID: the master binds as root, then setgid/setuid before Python runs.

    (This machine's Python lives in a root-only directory, so the dropped
    process cannot go on to import the app; the log shows the drop and that
    the root check passed.)
    """
    out = _run_ini(tmp_path, {"WEBMINI_UID": "65534", "WEBMINI_GID": "65534"},
                   wait_for="(as uid: 65534 gid: 65534)")
    assert "setgid() to 65534" in out and "setuid() to 65534" in out
    assert "\nwebmini: refusing to run as root" not in out  # the check's own output
    assert "exited with non-zero code" not in out
