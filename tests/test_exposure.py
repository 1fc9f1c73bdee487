"""uWSGI's lenient http-socket stays on loopback: webmini refuses to start otherwise."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support.servers import UWSGI_INI, UwsgiServer, uwsgi_binary

from webmini.serving.uwsgi_guard import check_http_sockets, is_local_address


@pytest.mark.parametrize("address", [
    "127.0.0.1:8080", "127.9.9.9:1", "localhost:80", "[::1]:8080", "/run/webmini.sock",
    "@abstract", "127.0.0.1:8080,foo",
])
def test_local_addresses(address: str) -> None:
    assert is_local_address(address)


@pytest.mark.parametrize("address", [
    ":8080", "0.0.0.0:8080", "[::]:8080", "10.0.0.5:80", "example.com:80", "192.168.1.2:8080",
])
def test_public_addresses(address: str) -> None:
    assert not is_local_address(address)


def test_check_reads_every_http_socket() -> None:
    check_http_sockets({"http-socket": [b"127.0.0.1:1", b"/tmp/s"], "socket": b"0.0.0.0:3031"})
    with pytest.raises(RuntimeError, match="nginx"):
        check_http_sockets({"http-socket": [b"127.0.0.1:1", b"0.0.0.0:2"]})
    with pytest.raises(RuntimeError):
        check_http_sockets({"http11-socket": b":9000"})
    with pytest.raises(RuntimeError, match="uWSGI http "):
        check_http_sockets({"http": b"0.0.0.0:8080"})


@pytest.mark.parametrize(("front", "option"), [
    ({}, "http-socket"),
    ({"WEBMINI_HTTP_ROUTER": "1"}, "http"),  # the keep-alive router parses HTTP as leniently
], ids=["http-socket", "http-router"])
def test_uwsgi_ini_refuses_a_public_http_socket(
    start_uwsgi: Callable[..., UwsgiServer], tmp_path: Path, front: dict[str, str], option: str,
) -> None:
    """uwsgi.ini with WEBMINI_HTTP on every interface exits at start, saying why."""
    assert start_uwsgi(processes=1, env=front).get("/").status == 200  # loopback: serves
    server = UwsgiServer(tmp_path, processes=1, env=front)
    server.http_port = 0
    env = server.environment()
    env["WEBMINI_HTTP"] = "0.0.0.0:0"
    proc = subprocess.run([uwsgi_binary(), "--ini", str(UWSGI_INI)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert f"uWSGI {option} '0.0.0.0:0' is reachable beyond this host" in proc.stdout + proc.stderr
