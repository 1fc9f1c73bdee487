"""End-to-end tests of examples/todo: JSON CRUD on MariaDB, a memcached read-through cache, sessions.

In-process tests drive the app with ``webmini.testing.Browser`` against the
private MariaDB and memcached servers; the last test serves it under real
uWSGI (2 gevent workers) and talks HTTP to it with a cookie jar.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.pool
import pytest
from support.memcached import raw_command

from examples.todo.app import MAX_TITLE_LENGTH, Settings, make_app
from webmini.testing import Browser

ROOT = Path(__file__).resolve().parent.parent
SECRET = "todo-test-secret-0123456789abcdef"
COOKIE = "webmini_session"


def _settings(mariadb: Any, memcached: Any) -> Settings:
    return Settings(mysql_url=mariadb.url, memcached=tuple(memcached.addresses), secret=SECRET)


def _root_sql(mariadb: Any, sql: str, params: Any = None) -> Any:
    conn = mariadb.root_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE {mariadb.database}")
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def _com_select(mariadb: Any) -> int:
    """The server-wide count of SELECT statements run so far."""
    rows = _root_sql(mariadb, "SHOW GLOBAL STATUS LIKE 'Com_select'")
    return int(rows[0][1])


def _raw_get(memcached: Any, key: str) -> list[tuple[str, int, Any]]:
    """Read ``key`` from every memcached node directly: [(node, flags, value)] where found."""
    found = []
    for address in memcached.addresses:
        reply = raw_command(address, b"get " + key.encode())
        if reply.startswith(b"VALUE "):
            header, _, rest = reply.partition(b"\r\n")
            _, _, flags, length = header.split()
            payload = rest[: int(length)]
            found.append((address, int(flags), json.loads(payload)))
    return found


@pytest.fixture
def todo(mariadb: Any, memcached: Any) -> Iterator[Any]:
    """A fresh todo app (its table dropped first, so the app has to create it)."""
    _root_sql(mariadb, "DROP TABLE IF EXISTS todos")
    app = make_app(_settings(mariadb, memcached))
    yield app
    app.resources.close()


def _login(browser: Browser, user: str) -> None:
    r = browser.post("/login", json={"user": user})
    assert r.status_code == 200, r
    assert r.json() == {"user": user}


def _create(browser: Browser, title: str) -> dict[str, Any]:
    r = browser.post("/todos", json={"title": title})
    assert r.status_code == 201, r
    return r.json()  # type: ignore[no-any-return]


def test_creates_its_table_and_does_crud(todo: Any, mariadb: Any) -> None:
    b = Browser(todo)
    _login(b, "alice")
    assert b.get("/todos").json() == {"todos": []}
    assert _root_sql(mariadb, "SHOW TABLES LIKE 'todos'") == (("todos",),)

    first = _create(b, "  buy milk  ")
    assert first["title"] == "buy milk" and first["done"] is False
    assert first["owner"] == "alice"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["created_at"])
    second = b.post("/todos", json={"title": "write tests", "done": True})
    assert second.headers.get("Location") == f"/todos/{second.json()['id']}"
    assert second.headers.get("Content-Type") == "application/json"

    listed = b.get("/todos").json()["todos"]
    assert [t["title"] for t in listed] == ["buy milk", "write tests"]
    assert b.get(f"/todos/{first['id']}").json() == first

    r = b.patch(f"/todos/{first['id']}", json={"done": True})
    assert r.status_code == 200
    assert r.json()["done"] is True and r.json()["title"] == "buy milk"
    r = b.patch(f"/todos/{first['id']}", json={"title": "buy oat milk", "done": False})
    assert (r.json()["title"], r.json()["done"]) == ("buy oat milk", False)
    assert b.get(f"/todos/{first['id']}").json()["title"] == "buy oat milk"
    row = _root_sql(mariadb, "SELECT title, done FROM todos WHERE id = %s", (first["id"],))
    assert row == (("buy oat milk", 0),)

    r = b.delete(f"/todos/{first['id']}")
    assert r.status_code == 204 and r.body == b""
    assert b.get(f"/todos/{first['id']}").status_code == 404
    assert b.delete(f"/todos/{first['id']}").status_code == 404
    assert [t["id"] for t in b.get("/todos").json()["todos"]] == [second.json()["id"]]


def test_not_logged_in_is_401(todo: Any) -> None:
    b = Browser(todo)
    for method, path, body in [
        ("GET", "/todos", None),
        ("POST", "/todos", {"title": "x"}),
        ("GET", "/todos/1", None),
        ("PATCH", "/todos/1", {"done": True}),
        ("DELETE", "/todos/1", None),
    ]:
        r = b.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r)
        assert _detail(r) == "login required"
    # A forged cookie (bad signature) is no login either.
    r = b.get("/todos", headers={"Cookie": f"{COOKIE}=abc.{int(time.time())}.forged"})
    assert r.status_code == 401


def _detail(r: Any) -> Any:
    """An error's ``detail``, after checking it is RFC 9457 problem details."""
    assert r.headers["Content-Type"] == "application/problem+json", r
    problem = r.json()
    assert problem["status"] == r.status_code and problem["type"] == "about:blank", problem
    return problem.get("detail")


def test_every_error_is_problem_details(todo: Any) -> None:
    """The API's own errors and webmini's (unknown URL, method, body type) share one format."""
    b = Browser(todo)
    assert _detail(b.get("/nowhere")) is None  # webmini's 404, its default title
    r = b.request("PUT", "/todos")
    assert r.status_code == 405 and _detail(r) is None
    _login(b, "carol")
    r = b.post("/todos", data=b"x" * 10, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and _detail(r) == "invalid JSON body"


def test_validation(todo: Any) -> None:
    b = Browser(todo)
    bad_logins = [
        b"{not json",
        b"[]",
        json.dumps({}).encode(),
        json.dumps({"user": ""}).encode(),
        json.dumps({"user": "a b"}).encode(),
        json.dumps({"user": "x" * 65}).encode(),
        json.dumps({"user": "alice", "admin": True}).encode(),
    ]
    for body in bad_logins:
        r = b.post("/login", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r)
        assert "detail" in r.json()
    assert COOKIE not in b.cookies  # nothing was logged in
    _login(b, "alice")

    def post(body: bytes) -> Any:
        return b.post("/todos", data=body, headers={"Content-Type": "application/json"})

    cases: list[tuple[bytes, str]] = [
        (b"", "a JSON body is required"),
        (b'{"title": "unterminated', "invalid JSON body"),
        (b"\xff\xfe", "invalid JSON body"),
        (b'"just a string"', "the body must be a JSON object"),
        (b"{}", "title must be a non-empty string"),
        (b'{"title": null}', "title must be a non-empty string"),
        (b'{"title": 42}', "title must be a non-empty string"),
        (b'{"title": "   "}', "title must be a non-empty string"),
        (json.dumps({"title": "x" * (MAX_TITLE_LENGTH + 1)}).encode(),
         f"title must be at most {MAX_TITLE_LENGTH} characters"),
        (b'{"title": "ok", "done": "yes"}', "done must be true or false"),
        (b'{"title": "ok", "owner": "bob"}', "unknown fields: owner"),
    ]
    for body, message in cases:
        r = post(body)
        assert r.status_code == 400, (body, r)
        assert _detail(r) == message, body
    assert b.get("/todos").json() == {"todos": []}  # nothing was stored

    longest = "é" * MAX_TITLE_LENGTH  # characters, not bytes
    made = _create(b, longest)
    assert b.get(f"/todos/{made['id']}").json()["title"] == longest
    for body, message in [
        (b"{}", "give title and/or done"),
        (b'{"title": ""}', "title must be a non-empty string"),
        (b'{"done": 1}', "done must be true or false"),
        (b'{"id": 7}', "unknown fields: id"),
        (b"nope", "invalid JSON body"),
    ]:
        r = b.patch(f"/todos/{made['id']}", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r)
        assert _detail(r) == message
    assert b.get(f"/todos/{made['id']}").json() == made
    # Ids beyond BIGINT and unknown ids are plain 404s.
    assert b.get("/todos/" + "9" * 30).status_code == 404
    assert _detail(b.get("/todos/999999")) == "no such todo"
    assert b.get("/todos/abc").status_code == 404


def test_others_todos_are_404(todo: Any, mariadb: Any) -> None:
    alice, bob = Browser(todo), Browser(todo)
    _login(alice, "alice")
    _login(bob, "bob")
    mine = _create(alice, "alice's secret")
    assert alice.get(f"/todos/{mine['id']}").status_code == 200  # now cached, owner alice
    for r in [
        bob.get(f"/todos/{mine['id']}"),
        bob.patch(f"/todos/{mine['id']}", json={"title": "pwned"}),
        bob.delete(f"/todos/{mine['id']}"),
    ]:
        assert r.status_code == 404, r
        assert _detail(r) == "no such todo"  # same as a missing one
    assert bob.get("/todos").json() == {"todos": []}
    assert alice.get(f"/todos/{mine['id']}").json() == mine
    assert _root_sql(mariadb, "SELECT title FROM todos") == (("alice's secret",),)


def test_login_regenerates_id_and_logout_ends_session(todo: Any, memcached: Any) -> None:
    b = Browser(todo)
    _login(b, "alice")
    first = b.cookies[COOKIE]
    first_id = first.split(".")[0]
    assert _raw_get(memcached, "todo-session:" + first_id)[0][2] == {"user": "alice"}
    made = _create(b, "mine")

    _login(b, "bob")  # a new id at each login; the old one is gone from memcached
    second = b.cookies[COOKIE]
    assert second.split(".")[0] != first_id
    assert _raw_get(memcached, "todo-session:" + first_id) == []
    assert b.get(f"/todos/{made['id']}").status_code == 404  # bob now

    old = Browser(todo)
    old.cookies[COOKIE] = first
    assert old.get("/todos").status_code == 401

    r = b.post("/logout")
    assert r.status_code == 204
    assert COOKIE not in b.cookies
    assert b.get("/todos").status_code == 401
    replay = Browser(todo)
    replay.cookies[COOKIE] = second
    assert replay.get("/todos").status_code == 401  # deleted server-side, not just forgotten


def test_read_through_cache(todo: Any, mariadb: Any, memcached: Any) -> None:
    b = Browser(todo)
    _login(b, "alice")
    made = _create(b, "cache me")
    key = f"todo:{made['id']}"
    assert _raw_get(memcached, key) == []  # created, not cached yet

    assert b.get(f"/todos/{made['id']}").json() == made
    found = _raw_get(memcached, key)
    assert len(found) == 1  # on exactly one node of the ring
    node, flags, value = found[0]
    assert flags == 256 and value == made  # stored as JSON, never pickled

    # A second read is served from memcached: not one SELECT reaches the server.
    before = _com_select(mariadb)
    for _ in range(5):
        assert b.get(f"/todos/{made['id']}").json() == made
    assert _com_select(mariadb) - before == 0
    # ...whereas a list always goes to the database.
    b.get("/todos")
    assert _com_select(mariadb) - before == 1

    # A change made behind the cache's back stays invisible until invalidated.
    _root_sql(mariadb, "UPDATE todos SET title = 'changed behind' WHERE id = %s", (made["id"],))
    assert b.get(f"/todos/{made['id']}").json()["title"] == "cache me"

    # PATCH writes the database and deletes the key; the next read caches the new row.
    assert b.patch(f"/todos/{made['id']}", json={"done": True}).status_code == 200
    assert _raw_get(memcached, key) == []
    fresh = b.get(f"/todos/{made['id']}").json()
    assert (fresh["title"], fresh["done"]) == ("changed behind", True)
    assert _raw_get(memcached, key)[0][2] == fresh

    # DELETE drops the key too: no stale todo survives in the cache.
    assert b.delete(f"/todos/{made['id']}").status_code == 204
    assert _raw_get(memcached, key) == []
    assert b.get(f"/todos/{made['id']}").status_code == 404


def test_settings_from_environment() -> None:
    with pytest.raises(RuntimeError, match="WEBMINI_TODO_MEMCACHED, WEBMINI_TODO_SECRET"):
        Settings.from_env({"WEBMINI_TODO_MYSQL_URL": "mysql://u:p@127.0.0.1/db"})
    settings = Settings.from_env({
        "WEBMINI_TODO_MYSQL_URL": "mysql://u:p@127.0.0.1/db",
        "WEBMINI_TODO_MEMCACHED": "127.0.0.1:1, 127.0.0.1:2,",
        "WEBMINI_TODO_SECRET": SECRET,
        "WEBMINI_TODO_CACHE_TTL": "60",
    })
    assert settings.memcached == ("127.0.0.1:1", "127.0.0.1:2")
    assert settings.cache_ttl == 60
    # Building the app opens nothing: no server is listening at these addresses.
    app = make_app(settings)
    assert app.resources._cache is None and app.resources._store is None


def test_concurrent_requests_share_one_lazy_pool(todo: Any) -> None:
    browsers = [Browser(todo) for _ in range(20)]
    for i, b in enumerate(browsers):
        _login(b, f"user{i}")

    def work(i: int) -> list[str]:
        b = browsers[i]
        made = _create(b, f"task {i}")
        assert b.get(f"/todos/{made['id']}").json()["owner"] == f"user{i}"
        return [t["title"] for t in b.get("/todos").json()["todos"]]

    results = gevent.pool.Pool(20).map(work, range(20))
    assert results == [[f"task {i}"] for i in range(20)]
    stats = todo.resources.store().db.stats()
    assert stats.in_use == 0 and stats.size <= stats.pool_size


# -- under uWSGI ---------------------------------------------------------------


@pytest.fixture
def uwsgi_todo(start_todo: Any) -> Iterator[tuple[int, Path]]:
    """The todo app served by the repository's uwsgi.ini: 2 lazy gevent workers, free ports."""
    server = start_todo(args=[
        # The ini turns request logging off; this test reads which worker served what.
        "--set", "disable-logging=false",
        "--logformat", "served-by=%(pid) %(method) %(uri) %(status)",
    ])
    yield server.http_port, server.log_path


class _Client:
    """urllib with a cookie jar; HTTP errors come back as responses, not exceptions."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request on a new connection; return (status, parsed JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with self.opener.open(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        return status, json.loads(raw) if raw else None


def _served_by(log: Path, method: str, uri: str, at_least: int = 1) -> list[int]:
    """Pids of the workers that answered ``method uri`` with a 2xx, from uWSGI's request log."""
    pattern = re.compile(rf"served-by=(\d+) {method} {re.escape(uri)} (\d+)")
    deadline = time.monotonic() + 5.0
    while True:  # uWSGI writes the log line just after the response
        pids = [int(m[1]) for m in pattern.finditer(log.read_text()) if m[2].startswith("2")]
        if len(pids) >= at_least or time.monotonic() > deadline:
            return pids
        time.sleep(0.02)


def test_under_uwsgi_sessions_work_across_workers(uwsgi_todo: tuple[int, Path]) -> None:
    port, log = uwsgi_todo
    client = _Client(port)
    assert client.call("GET", "/todos")[0] == 401
    assert client.call("POST", "/login", {"user": "carol"}) == (200, {"user": "carol"})
    assert [c.name for c in client.jar] == [COOKIE]
    status, made = client.call("POST", "/todos", {"title": "served by uWSGI"})
    assert status == 201 and made["owner"] == "carol"
    login_pid = _served_by(log, "POST", "/login")[0]

    # Read until a worker other than the one that logged in has served an
    # authenticated read: the session and the todo live in memcached and
    # MariaDB, not in a worker's memory. Concurrent clients spread the
    # accepts over both workers.
    path = f"/todos/{made['id']}"
    pids: set[int] = set()
    pool = gevent.pool.Pool(8)
    for round_ in range(1, 26):
        results = pool.map(lambda _: client.call("GET", path), range(8))
        assert all(r == (200, made) for r in results), results
        pids = set(_served_by(log, "GET", path, at_least=8 * round_))
        if pids - {login_pid}:
            break
    assert pids - {login_pid}, f"every read was served by the login worker {login_pid}"
    assert len(pids | {login_pid}) == 2  # two workers, no more

    assert client.call("POST", "/logout") == (204, None)
    assert client.call("GET", path)[0] == 401
