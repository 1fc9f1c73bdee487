"""SQL injection through ``web.database``'s names and arguments, replayed live.

Each attack runs against a SQLite file, the private MariaDB and the private
PostgreSQL (tests/support), on a ``users`` table next to a ``secrets`` table:
nothing may leak or change, and every refusal is a ``ValueError`` that a
handler answers as 400.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

import webmini as web
from webmini.testing import TestClient
from webmini.webpy import db as wdb

DBNS = ["sqlite", "mysql", "postgres"]

_DDL = {
    "sqlite": [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, password TEXT NOT NULL,"
        " is_admin INT NOT NULL DEFAULT 0, created TIMESTAMP)",
        "CREATE TABLE secrets (k TEXT, v TEXT)",
    ],
    "mysql": [
        "CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL,"
        " password VARCHAR(100) NOT NULL, is_admin INT NOT NULL DEFAULT 0, created DATETIME)"
        " ENGINE=InnoDB",
        "CREATE TABLE secrets (k VARCHAR(100), v VARCHAR(100)) ENGINE=InnoDB",
    ],
    "postgres": [
        "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL, password TEXT NOT NULL,"
        " is_admin INT NOT NULL DEFAULT 0, created TIMESTAMP)",
        "CREATE TABLE secrets (k TEXT, v TEXT)",
    ],
}

SECRET = "TOPSECRET"

# MySQL's default sql_mode reads "..." as a string in which \" escapes, so this
# "quoted name" closes after `\".` and the rest is SQL: the review's attack.
UNION_LEAK = '"\\"." OR 1=1 UNION SELECT 1,k,v,0,NULL FROM secrets -- "'
OR_ALL = '"\\"." OR 1=1 -- "'

#: Names that must never reach the SQL, on any dialect.
ATTACK_KEYS = [
    UNION_LEAK,
    OR_ALL,
    '"a"" OR ""1""=""1"',                       # doubled quotes inside a quoted name
    "`a` OR 1=1 -- `",                          # quoted part followed by SQL
    "`a\\` OR 1=1 -- `",                        # backslash inside backticks
    "`--\nid IS NOT NULL UNION SELECT 1,k,v,0,NULL FROM secrets --`",  # newline + comment
    "name = name OR 1",
    "1=1 OR name",
    "name) VALUES ('x', 'y'); DROP TABLE secrets; --",
    "name\n",
    "name\x00",
    "users.name.x",
    "nаme",                                     # a Cyrillic "а"
]


def _make(dbn: str, request: pytest.FixtureRequest, tmp_path_factory: Any) -> wdb.DB:
    if dbn == "sqlite":
        path = tmp_path_factory.mktemp("sqlsec") / "app.db"
        return web.database(dbn="sqlite", db=str(path))
    if dbn == "mysql":
        m = request.getfixturevalue("mariadb")
        return web.database(dbn="mysql", host=m.host, port=m.port, user=m.user, pw=m.password,
                            db=m.database)
    return web.database(**request.getfixturevalue("postgres").params())


@pytest.fixture(scope="module", params=DBNS)
def db(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[wdb.DB]:
    """One live database per dialect for the module."""
    database = _make(request.param, request, tmp_path_factory)
    yield database
    database.close()


@pytest.fixture
def site(db: wdb.DB) -> wdb.DB:
    """Fresh ``users`` (ann, bob; nobody admin) and ``secrets`` tables."""
    for table in ("users", "secrets"):
        db.query(f"DROP TABLE IF EXISTS {table}")
    for ddl in _DDL[db.dbname]:
        db.query(ddl)
    db._sequences = None
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    db.insert("users", name="ann", password="pw-ann", created=when)
    db.insert("users", name="bob", password="pw-bob", created=when)
    db.insert("secrets", seqname=False, k="token", v=SECRET)
    return db


def state(db: wdb.DB) -> tuple[list[Any], list[Any]]:
    """Everything in both tables, to compare before and after an attack."""
    users = [tuple(r.values()) for r in db.select("users", order="id")]
    secrets = [tuple(r.values()) for r in db.select("secrets", order="k")]
    return users, secrets


def not_refused(call: Callable[[], Any]) -> str | None:
    """Why ``call()`` was not refused before the database ran it (None: refused, as a 400)."""
    try:
        out = call()
    except ValueError as e:
        if not (isinstance(e, web.HTTPError) and e.status_code == 400):
            return f"a ValueError but no 400: {e!r}"
        return None
    except Exception as e:  # noqa: BLE001 - the driver ran it: that is the failure
        return f"the database ran it: {type(e).__name__}: {e}"
    rows = out.list() if hasattr(out, "list") else out
    return f"the database ran it and answered {rows!r}"


def refused(call: Callable[[], Any]) -> Any:
    """``call()`` must be refused before the database runs it, as a 400 ValueError."""
    try:
        call()
    except ValueError as e:
        if isinstance(e, web.HTTPError) and e.status_code == 400:
            return e
    pytest.fail(not_refused(call) or "refused only on the second try")


# -- names: keywords and dict keys --------------------------------------------------


def _name_calls(db: wdb.DB, key: str) -> dict[str, Callable[[], Any]]:
    return {
        "where(**names)": lambda: db.where("users", **{key: "x"}),
        "where(name=, **names)": lambda: db.where("users", name="ann", **{key: "x"}),
        "select(where=dict)": lambda: db.select("users", where={key: "x"}),
        "select(where=dict, 2 keys)": lambda: db.select("users", where={"name": "ann", key: "x"}),
        "insert(**names)": lambda: db.insert("users", name="eve", password="p", **{key: "1"}),
        "multiple_insert": lambda: db.multiple_insert(
            "users", [{"name": "eve", "password": "p", key: "1"}] * 2),
        "update(**names)": lambda: db.update("users", where="id = $id", vars={"id": 1},
                                             **{key: "1"}),
        "update(where=dict)": lambda: db.update("users", where={key: "x"}, is_admin=1),
        "update(where=dict, 2 keys)": lambda: db.update("users", where={"id": 1, key: "x"},
                                                        is_admin=1),
        "delete(where=dict)": lambda: db.delete("users", where={key: "x"}),
    }


def check_refused(db: wdb.DB, key: str) -> list[str]:
    """Run every call with ``key`` as a name; say which ran or changed the tables."""
    problems = []
    before = state(db)
    for label, call in _name_calls(db, key).items():
        problem = not_refused(call)
        if problem:
            problems.append(f"{label}: {problem}")
        after = state(db)
        if after != before:
            problems.append(f"{label}: the tables changed to {after}")
            before = after
    return problems


@pytest.mark.parametrize("key", ATTACK_KEYS, ids=range(len(ATTACK_KEYS)))
def test_attack_names_are_refused_and_change_nothing(site: wdb.DB, key: str) -> None:
    assert check_refused(site, key) == []


def test_the_review_attack_leaks_nothing(site: wdb.DB) -> None:
    # db.where("users", **web.input()) with the review's field name.
    e = refused(lambda: site.where("users", **{UNION_LEAK: "x"}))
    assert "not a column name" in str(e)
    assert SECRET not in e.data  # the response body names the problem, not the value


def test_plain_names_pass_unchanged(site: wdb.DB) -> None:
    # web.py's SQL for ordinary names, byte for byte.
    assert site.where("users", name="ann", _test=True).query() == (
        "SELECT * FROM users WHERE name = %s")
    assert site.select("users", where={"users.name": "ann", "id$x": 1}, _test=True).query() == (
        "SELECT * FROM users WHERE id$x = %s AND users.name = %s")
    assert [r.name for r in site.where("users", **{"users.name": "bob"})] == ["bob"]
    new = site.insert("users", name="cid", password="p", is_admin=0)
    assert site.update("users", where={"id": new}, is_admin=1) == 1
    assert site.delete("users", where={"id": new, "is_admin": 1}) == 1


def test_quoted_names_in_the_dialects_own_quotes(site: wdb.DB) -> None:
    # A part already in the dialect's identifier quotes passes unchanged; the
    # other quote does not (a string on MySQL, an operator on PostgreSQL, and
    # SQLite reads an unknown "name" as a string, true for every row).
    own, other = ('"', "`") if site.dbname == "postgres" else ("`", '"')
    assert [r.name for r in site.where("users", **{f"{own}name{own}": "ann"})] == ["ann"]
    qualified = f"users.{own}name{own}"
    assert [r.name for r in site.select("users", where={qualified: "bob"})] == ["bob"]
    assert site.update("users", where={f"{own}id{own}": 1}, **{f"{own}is_admin{own}": 1}) == 1
    before = state(site)
    for key in (f"{other}name{other}", f"{other}nope{other}", f"{own}na{own}{own}me{own}",
                f"{own}name{own} OR 1=1", f"{own}%s{own}", f"{own}a;b{own}", f"{own}{own}"):
        assert check_refused(site, key) == []
    assert state(site) == before


def test_sqlwhere_checks_names() -> None:
    assert web.db.sqlwhere([("a", 1), ("t.b", "x")]).query() == "a = %s AND t.b = %s"
    for key in ATTACK_KEYS + ['"a"', "`a`"]:
        with pytest.raises(wdb.SQLInputError):
            web.db.sqlwhere([(key, 1)])


def test_a_request_spread_into_the_api_cannot_set_its_switches(site: wdb.DB) -> None:
    # **web.input() can name where()'s and insert()'s own keywords too.
    before = state(site)
    refused(lambda: site.where("users", _test="1"))
    refused(lambda: site.insert("users", name="eve", password="p", _test="1"))
    refused(lambda: site.update("users", where={"id": 1}, _test="1", is_admin=1))
    refused(lambda: site.update("users", where="id = $id", vars="x", is_admin=1))
    refused(lambda: site.where("users", limit="1; DROP TABLE secrets"))
    refused(lambda: site.where("users", offset="0 UNION SELECT 1"))
    if site.dbname == "postgres":
        refused(lambda: site.insert("users", seqname="users_id_seq') --", name="e", password="p"))
    assert state(site) == before


# -- limit and offset ------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "1e3", " 1", "1 ", "+1", "", "٣",
                                 "1; DROP TABLE secrets", "1 UNION SELECT 1", -1, 1.0, True,
                                 2**63, "9" * 20, [1], None])
def test_limit_and_offset_must_be_whole_numbers(site: wdb.DB, bad: Any) -> None:
    before = state(site)
    if bad is not None:
        refused(lambda: site.select("users", limit=bad))
    refused(lambda: site.select("users", limit=1, offset=bad if bad is not None else "x"))
    refused(lambda: site.where("users", name="ann", limit=bad if bad is not None else "y"))
    assert state(site) == before


def test_limit_and_offset_from_a_query_string_work(site: wdb.DB) -> None:
    # web.py sends "1" as a string: LIMIT '1' is a syntax error on MySQL.
    assert [r.name for r in site.select("users", order="id", limit="1")] == ["ann"]
    assert [r.name for r in site.select("users", order="id", limit="1", offset="1")] == ["bob"]
    assert [r.name for r in site.where("users", order="id", limit="5", offset="0")] == [
        "ann", "bob"]
    assert site.select("users", limit="0").list() == []
    q = site.select("users", limit="10", offset="20", _test=True)
    assert (q.query(), q.values()) == ("SELECT * FROM users LIMIT %s OFFSET %s", [10, 20])
    literal = site.select("users", order="id", limit=web.SQLLiteral("1"), _test=True)
    assert literal.query() == "SELECT * FROM users ORDER BY id LIMIT 1"


# -- order=: raw SQL, and order_by() for client sort keys -----------------------------


ORACLE = "IF((SELECT SUBSTR(v,1,1) FROM secrets)='T', id, -id)"
ORACLES = [
    ORACLE,
    "CASE WHEN (SELECT SUBSTR(v,1,1) FROM secrets)='T' THEN id ELSE -id END",
    "name, (SELECT v FROM secrets)",
    "name desc, id; DROP TABLE secrets",
    "-(SELECT 1)",
    "name DESC --",
    "name\tdesc\nlimit",
    "name desc desc",
    "name,",
    ",",
    "-",
]


@pytest.mark.parametrize("spec", ORACLES, ids=range(len(ORACLES)))
def test_order_by_refuses_what_is_not_an_allowed_key(site: wdb.DB, spec: str) -> None:
    before = state(site)
    refused(lambda: site.select(
        "users", order=wdb.order_by(spec, allowed=("name", "created"), default="id")))
    fallback = wdb.order_by(spec, allowed=("name", "created"), default="id", strict=False)
    assert fallback == "id"
    assert [r.name for r in site.select("users", order=fallback)] == ["ann", "bob"]
    assert state(site) == before


def test_order_by_builds_safe_sql_and_sorts_live(site: wdb.DB) -> None:
    allowed = ("name", "created")
    assert wdb.order_by("name", allowed, "id") == "name"
    assert wdb.order_by("-name", allowed, "id") == "name DESC"
    assert wdb.order_by("+name", allowed, "id") == "name"
    assert wdb.order_by(" name  DeSc ", allowed, "id") == "name DESC"
    assert wdb.order_by("name asc", allowed, "id") == "name"
    assert wdb.order_by("-created, name", allowed, "id") == "created DESC, name"
    assert wdb.order_by(None, allowed, "id") == "id"
    assert wdb.order_by("", allowed, "id DESC") == "id DESC"
    assert wdb.order_by("  ", allowed) is None
    mapped = {"who": "users.name", "when": "users.created"}
    assert wdb.order_by("-who,when", mapped) == "users.name DESC, users.created"
    refused(lambda: wdb.order_by("name", mapped))           # only the public keys
    refused(lambda: wdb.order_by("id", allowed, "id"))      # the default is not allowed
    refused(lambda: wdb.order_by("name,name,name", allowed))  # more terms than columns
    refused(lambda: wdb.order_by(["name"], allowed))          # type: ignore[arg-type]
    with pytest.raises(wdb.SQLInputError):
        wdb.order_by("name", ("name", "x; DROP TABLE t"))    # the app's own list is checked
    order = wdb.order_by("-name", allowed, "id")
    assert [r.name for r in site.select("users", order=order)] == ["bob", "ann"]
    order = wdb.order_by("name", allowed, "id")
    assert [r.name for r in site.select("users", order=order, limit="1")] == ["ann"]


# -- through HTTP: a 400, never a 500, never a leak ----------------------------------


def _app(db: wdb.DB) -> TestClient:
    class Users:
        def GET(self) -> Any:
            return [r.name for r in db.where("users", **web.input())]

        POST = GET

    class Mine:
        def GET(self) -> Any:
            # The app's own what/order beside the request's columns: fine.
            i = web.input(order="ignored")
            return [r.name for r in db.where("users", what="id, name", order="id DESC",
                                             name=i.name)]

    class Lenient:
        def GET(self) -> Any:
            try:
                return [r.name for r in db.where("users", **web.input())]
            except ValueError:
                return "no such filter"  # caught: the 400 is not applied behind its back

    class Search:
        def GET(self) -> Any:
            return [r.name for r in db.select("users", where=dict(web.input()), order="id")]

    class Page:
        def GET(self) -> Any:
            i = web.input(sort=None, limit="10", offset="0")
            order = web.db.order_by(i.sort, allowed=("name", "created"), default="id")
            rows = db.select("users", what="id, name", order=order, limit=i.limit,
                             offset=i.offset)
            return [r.name for r in rows]

    class Signup:
        def POST(self) -> Any:
            return {"id": db.insert("users", **web.input())}

    class Promote:
        def POST(self) -> Any:
            return {"updated": db.update("users", where=dict(web.input()), is_admin=1)}

    class Remove:
        def POST(self) -> Any:
            return {"deleted": db.delete("users", where=dict(web.input()))}

    urls = ("/users", "Users", "/mine", "Mine", "/lenient", "Lenient", "/search", "Search", "/page", "Page", "/signup", "Signup",
            "/promote", "Promote", "/remove", "Remove")
    return TestClient(web.application(urls, locals()).wsgifunc())


def test_attacks_over_http_are_400s_that_leak_and_change_nothing(site: wdb.DB) -> None:
    client = _app(site)
    before = state(site)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for key in ATTACK_KEYS:
        query = urlencode({key: "x"})
        for method, path in (("GET", "/users"), ("GET", "/search"), ("POST", "/promote"),
                             ("POST", "/remove")):
            r = client.request(method, f"{path}?{query}" if method == "GET" else path,
                               data=query.encode() if method == "POST" else None,
                               headers=form if method == "POST" else None)
            assert r.status.startswith("400"), (method, path, key, r.status, r.text)
            assert SECRET not in r.text and "pw-" not in r.text
        body = urlencode({"name": "eve", "password": "p", key: "1"}).encode()
        r = client.request("POST", "/signup", data=body, headers=form)
        assert r.status.startswith("400"), (key, r.status, r.text)
    spread = [urlencode({"what": "(SELECT v FROM secrets) AS name"}),
              urlencode({"order": ORACLE}), urlencode({"group": "name, (SELECT v FROM secrets)"}),
              urlencode({"name": "ann", "order": ORACLE}), "_test=1", "limit=x", "offset=-1"]
    for query in spread:  # where()'s own keywords, reached through **web.input()
        r = client.request("GET", f"/users?{query}")
        assert r.status.startswith("400"), (query, r.status, r.text)
        assert SECRET not in r.text
        r = client.request("POST", "/users", data=query.encode(), headers=form)
        assert r.status.startswith("400"), (query, r.status, r.text)
    for query in ("limit=abc", "offset=-1", "limit=1%20UNION%20SELECT%201",
                  urlencode({"sort": ORACLE}), "sort=password", "sort=name;"):
        r = client.request("GET", f"/page?{query}")
        assert r.status.startswith("400"), (query, r.status, r.text)
        assert SECRET not in r.text
    assert state(site) == before
    ok = client.request("GET", "/page?sort=-name&limit=1&offset=0")
    assert ok.status.startswith("200") and ok.json() == ["bob"]
    assert client.request("GET", "/page?sort=name&limit=5&offset=1").json() == ["bob"]
    assert client.request("GET", "/users?name=ann").json() == ["ann"]
    assert client.request("GET", "/mine?name=bob&order=id").json() == ["bob"]
    caught = client.request("GET", "/lenient?" + urlencode({UNION_LEAK: "x"}))
    assert caught.status.startswith("200") and caught.text == "no such filter"
