"""webmini under uWSGI behind a real nginx (examples/nginx.conf, uwsgi protocol)."""

from __future__ import annotations

import http.client
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import gevent.pool
from support.servers import NginxServer, UwsgiServer, nginx_site, write_probe_app

StartUwsgi = Callable[..., UwsgiServer]
StartNginx = Callable[[str], NginxServer]


def test_example_site_is_rewritten_for_tests() -> None:
    """The test config is examples/nginx.conf itself, with only the addresses changed."""
    site = nginx_site("/tmp/x/uwsgi.sock", 5678)
    assert "server unix:/tmp/x/uwsgi.sock;" in site and "listen 127.0.0.1:5678;" in site
    assert "uwsgi_pass webmini;" in site and "keepalive 64;" in site


def test_hello_through_nginx(start_uwsgi: StartUwsgi, start_nginx: StartNginx) -> None:
    """nginx -> uwsgi protocol -> webmini: status, headers and bodies come through intact."""
    uwsgi = start_uwsgi(processes=2)
    nginx = start_nginx(uwsgi.socket_address)

    r = nginx.get("/")
    assert (r.status, r.body) == (200, b"Hello, world!")
    assert r.headers["server"].startswith("nginx")
    assert r.headers["content-type"].startswith("text/plain")
    assert nginx.get("/json").json() == {"message": "Hello, world!", "framework": "webmini"}
    assert nginx.get("/users/9").json() == {"id": 9, "name": "user9"}
    assert nginx.get("/users/x").status == 404
    assert nginx.get("/boom").status == 500
    assert nginx.get("/").status == 200  # the worker survived the 500
    assert "upstream" not in nginx.error_log()  # no 502s, no broken upstream connections


def test_keepalive_client_connection(start_uwsgi: StartUwsgi, start_nginx: StartNginx) -> None:
    """A client keeps one connection to nginx for many requests (uWSGI sees one each)."""
    uwsgi = start_uwsgi(processes=1)
    nginx = start_nginx(uwsgi.socket_address)
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    try:
        conn.connect()
        local = conn.sock.getsockname()
        for i in range(20):
            conn.request("GET", f"/users/{i}")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == f'{{"id":{i},"name":"user{i}"}}'.encode()
            assert conn.sock is not None and conn.sock.getsockname() == local  # same connection
    finally:
        conn.close()
    assert sum(w["requests"] for w in uwsgi.stats()["workers"]) >= 20


def test_request_variables_reach_the_app(
    start_uwsgi: StartUwsgi, start_nginx: StartNginx, tmp_path: Path
) -> None:
    """uwsgi_params carry method, path, query, host, client address and the body."""
    uwsgi = start_uwsgi(processes=1, env=write_probe_app(tmp_path))
    nginx = start_nginx(uwsgi.socket_address)

    seen = nginx.get("/env?a=1&b=%C3%A9", headers={"Host": "api.example", "X-Trace": "t1"}).json()
    assert seen["path"] == "/env" and seen["query"] == "?a=1&b=%C3%A9"
    assert seen["input"] == {"a": "1", "b": "é"}
    assert seen["method"] == "GET" and seen["host"] == "api.example"
    assert seen["ip"] == "127.0.0.1"
    assert seen["env"]["HTTP_X_TRACE"] == "t1"
    assert seen["env"]["SERVER_PORT"] == str(nginx.port)

    body = b"x" * 200_000  # larger than nginx's in-memory body buffer: spooled, then sent
    r = nginx.get("/env", method="POST", body=body, headers={"Content-Type": "text/plain"})
    assert r.status == 200 and r.json() == {"body": body.decode(), "length": len(body)}


def test_concurrent_slow_requests_through_nginx(
    start_uwsgi: StartUwsgi, start_nginx: StartNginx
) -> None:
    """300 requests waiting 100 ms each, all at once through nginx, finish in < 1.5 s."""
    uwsgi = start_uwsgi(processes=2)
    nginx = start_nginx(uwsgi.socket_address)
    pool = gevent.pool.Pool(300)
    started = time.monotonic()
    statuses = pool.map(lambda _: nginx.get("/slow", timeout=30).status, range(300))
    elapsed = time.monotonic() - started
    assert Counter(statuses) == {200: 300}
    assert elapsed < 1.5, f"300 x 100 ms through nginx took {elapsed:.2f} s (sequential: 30 s)"
