"""X-Forwarded-* headers: believed only from config.trusted_proxies (none by default)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.servers import NginxServer, UwsgiServer

import webmini as web
from webmini.config import config
from webmini.forwarded import client_ip
from webmini.testing import TestClient

APP = '''
import webmini as web

class Where:
    def GET(self):
        c = web.ctx
        return {"protocol": c.protocol, "host": c.host, "ip": c.ip, "home": c.home}

class Go:
    def GET(self):
        raise web.seeother("/where")

app = web.application(("/where", "Where", "/go", "Go"), globals())
application = app.wsgifunc()
'''

SPOOF = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
         "X-Forwarded-For": "6.6.6.6"}


def _app() -> web.application:
    ns: dict[str, object] = {}
    exec(compile(APP, "forwarded_app", "exec"), ns)
    return ns["app"]  # type: ignore[return-value]


@pytest.fixture
def trusted() -> Iterator[Callable[[object], None]]:
    saved = config.get("trusted_proxies")

    def set_(value: object) -> None:
        config.trusted_proxies = value

    yield set_
    config.trusted_proxies = saved


def test_untrusted_by_default(trusted: Callable[[object], None]) -> None:
    """With no trusted proxy, a client's X-Forwarded-* headers change nothing."""
    trusted("")
    client = TestClient(_app())
    seen = client.get("/where", headers=SPOOF).json()
    assert seen == {"protocol": "http", "host": "localhost:8080", "ip": "127.0.0.1",
                    "home": "http://localhost:8080"}
    # Redirects are relative by default: forged headers cannot move them either.
    assert client.get("/go", headers=SPOOF).headers["Location"] == "/where"


def test_trusted_peer_is_followed(trusted: Callable[[object], None]) -> None:
    """From a trusted peer (here 127.0.0.1) the headers set protocol, host, ip and home."""
    trusted(["127.0.0.0/8", "10.0.0.1"])
    client = TestClient(_app())
    seen = client.get("/where", headers=SPOOF).json()
    assert seen == {"protocol": "https", "host": "evil.example", "ip": "6.6.6.6",
                    "home": "https://evil.example"}
    saved = (config.absolute_redirects, config.allowed_hosts)
    config.absolute_redirects, config.allowed_hosts = True, ("localhost:8080",)
    try:
        # The proxy's X-Forwarded-Host must be one of ours too (webmini.hosts).
        assert client.get("/go", headers=SPOOF).status == "400 Bad Request"
        config.allowed_hosts = ("localhost:8080", "evil.example")
        location = client.get("/go", headers=SPOOF).headers["Location"]
    finally:
        config.absolute_redirects, config.allowed_hosts = saved
    # web.py-style absolute redirects take the scheme the trusted proxy saw.
    assert location == "https://localhost:8080/where"


def test_other_peers_are_not(trusted: Callable[[object], None]) -> None:
    """A peer outside the list is not believed, even when others are trusted."""
    trusted("10.0.0.0/8, ::1")
    seen = TestClient(_app()).get("/where", headers=SPOOF, env={"REMOTE_ADDR": "192.0.2.7"}).json()
    assert (seen["protocol"], seen["host"], seen["ip"]) == ("http", "localhost:8080", "192.0.2.7")


def test_bad_values_are_ignored(trusted: Callable[[object], None]) -> None:
    """Even from a trusted proxy, an unknown scheme or an invalid host is ignored."""
    trusted("127.0.0.1")
    bad = {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "a b/c",
           "X-Forwarded-For": "not-an-ip"}
    seen = TestClient(_app()).get("/where", headers=bad).json()
    assert (seen["protocol"], seen["host"], seen["ip"]) == ("http", "localhost:8080", "127.0.0.1")


def test_for_chain_is_read_from_the_right(trusted: Callable[[object], None]) -> None:
    """The client is the rightmost address that is not a trusted proxy."""
    trusted("127.0.0.1,10.0.0.0/8")
    env = {"REMOTE_ADDR": "127.0.0.1"}
    # A client forging "1.1.1.1" in front of its real address gains nothing.
    assert client_ip({**env, "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.9, 10.0.0.3"}) == "203.0.113.9"
    assert client_ip({**env, "HTTP_X_FORWARDED_FOR": "10.0.0.5, 10.0.0.3"}) == "10.0.0.5"
    assert client_ip({"REMOTE_ADDR": "203.0.113.1", "HTTP_X_FORWARDED_FOR": "1.1.1.1"}) == "203.0.113.1"
    assert client_ip({**env, "HTTP_X_FORWARDED_FOR": "[2001:db8::1]"}) == "[2001:db8::1]"


def test_shipped_nginx_replaces_client_headers(
    start_uwsgi: Callable[..., UwsgiServer], start_nginx: Callable[[str], NginxServer],
    tmp_path: Path,
) -> None:
    """nginx -> uWSGI as shipped: a client's forged headers never reach ctx."""
    (tmp_path / "forwarded_app.py").write_text(APP)
    uwsgi = start_uwsgi(processes=1, env={"WEBMINI_MODULE": "forwarded_app:application",
                                          "PYTHONPATH": str(tmp_path)})
    nginx = start_nginx(uwsgi.socket_address)
    seen = nginx.get("/where", headers={"Host": "shop.example", **SPOOF}).json()
    assert seen == {"protocol": "http", "host": "shop.example", "ip": "127.0.0.1",
                    "home": "http://shop.example"}
    # uWSGI's loopback http-socket: local clients are trusted by uwsgi.ini.
    local = uwsgi.get("/where", headers=SPOOF).json()
    assert (local["protocol"], local["host"], local["ip"]) == ("https", "evil.example", "6.6.6.6")
