"""``web.database`` on its three real servers: a SQLite file, MariaDB and PostgreSQL.

The same API suite runs against each ``dbn``; the SQL that ``_test=True``
returns is compared with web.py 0.76's for the same calls.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import pytest
import web as webpy  # web.py 0.76, the reference
import web.db as webpy_db
from support.hubstall import hub_stall

import webmini as web
from webmini.storage import Storage
from webmini.webpy import db as wdb

DBNS = ["sqlite", "mysql", "postgres"]

_DDL = {
    "sqlite": "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
              " age INT, born TIMESTAMP)",
    "mysql": "CREATE TABLE person (id INT AUTO_INCREMENT PRIMARY KEY,"
             " name VARCHAR(200) NOT NULL UNIQUE, age INT, born DATETIME) ENGINE=InnoDB",
    "postgres": "CREATE TABLE person (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                " age INT, born TIMESTAMP)",
}


def _make(dbn: str, request: pytest.FixtureRequest, tmp_path_factory: Any, **kw: Any) -> wdb.DB:
    if dbn == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "test.db"
        return web.database(dbn="sqlite", db=str(path), **kw)
    if dbn == "mysql":
        m = request.getfixturevalue("mariadb")
        return web.database(dbn="mysql", host=m.host, port=m.port, user=m.user, pw=m.password,
                            db=m.database, **kw)
    pg = request.getfixturevalue("postgres")
    return web.database(**{**pg.params(), **kw})


@pytest.fixture(scope="module", params=DBNS)
def db(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[wdb.DB]:
    """One database per dbn for the module."""
    database = _make(request.param, request, tmp_path_factory)
    yield database
    database.close()


@pytest.fixture
def people(db: wdb.DB) -> wdb.DB:
    """A fresh ``person`` table with three rows."""
    db.query("DROP TABLE IF EXISTS person")
    db.query(_DDL[db.dbname])
    db._sequences = None
    db.multiple_insert("person", [
        {"name": "ann", "age": 30, "born": datetime.datetime(1990, 1, 2, 3, 4, 5)},
        {"name": "bob", "age": 20, "born": None},
        {"name": "cid", "age": 20, "born": None},
    ])
    return db


def names(rows: Any) -> list[str]:
    return [r.name for r in rows]


# -- _test=True: the SQL web.py would build ---------------------------------------------


class _Thing:
    id = 7


_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("query", ("SELECT * FROM foo",), {}),
    ("query", ("SELECT * FROM foo WHERE x = $x AND y IN $y",), {"vars": {"x": "f'o", "y": [1, 2]}}),
    ("query", ("SELECT * FROM t WHERE id = $t.id AND k = $d['k'] AND n LIKE '%a%'",),
     {"vars": {"t": _Thing(), "d": {"k": None}}}),
    ("query", ("WHERE a = $a AND b = $b AND c = $c",),
     {"vars": {"a": True, "b": 1.5, "c": datetime.datetime(2020, 1, 2, 3, 4, 5)}}),
    ("query", ("SELECT '$$5' $x",), {"vars": {"x": 0}}),
    ("select", ("foo",), {}),
    ("select", (["foo", "bar"],), {"where": "foo.bar_id = bar.id", "limit": 5}),
    ("select", ("foo",), {"what": "a, count(*) AS n", "where": "a > $a", "vars": {"a": 3},
                          "group": "a", "order": "n DESC", "limit": 10, "offset": 20}),
    ("select", ("foo",), {"where": {"id": 5, "name": "x"}}),
    ("select", ("foo",), {"where": "", "limit": 0}),
    ("select", ("foo",), {"what": "count(*)", "where": "x LIKE '%$$%' AND y = $y",
                          "vars": {"y": 1}, "offset": 5, "limit": "10"}),
    ("select", (("a", "b"),), {"where": "a.id = b.id AND b.k IN $k", "vars": {"k": (3, 1)},
                               "order": "a.id"}),
    ("select", ("foo",), {"where": 3}),
    ("where", ("foo",), {"source": 2, "crust": "dewey"}),
    ("where", ("foo",), {}),
    ("where", ("foo",), {"what": "id", "order": "id", "limit": 1, "bar": [1, 2]}),
    ("insert", ("foo",), {"name": "bob", "age": 2}),
    ("update", ("foo",), {"where": "name = $name", "vars": {"name": "Joe"}, "name": "bob",
                          "age": 2}),
    ("update", ("foo",), {"where": 5, "age": 3}),
    ("delete", ("foo",), {"where": "name = $name", "vars": {"name": "Joe"}}),
    ("delete", ("foo",), {"where": {"a": 1}, "using": "bar"}),
]


def _ref_db() -> Any:
    ref = webpy_db.DB(None, {"pooling": False})
    ref.supports_multiple_insert = True
    return ref


@pytest.mark.parametrize("method,args,kwargs", _CALLS)
def test_test_sql_equals_webpy(method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                               tmp_path: Any) -> None:
    mine = web.database(dbn="sqlite", db=str(tmp_path / "x.db"))
    # On purpose: a string limit/offset becomes an int ("10" -> 10); web.py
    # sends '10', a syntax error on MySQL. The SQL text is the same.
    ref_kwargs = {k: int(v) if k in ("limit", "offset") and isinstance(v, str) else v
                  for k, v in kwargs.items()}
    a = getattr(_ref_db(), method)(*args, _test=True, **ref_kwargs)
    b = getattr(mine, method)(*args, _test=True, **kwargs)
    assert str(b) == str(a)
    assert repr(b) == repr(a)
    for style in ("qmark", "format", "pyformat"):
        assert b.query(style) == a.query(style)
    assert b.values() == a.values()


def test_literals_and_multiple_insert_sql_equal_webpy(tmp_path: Any) -> None:
    mine = web.database(dbn="sqlite", db=str(tmp_path / "x.db"))
    mine.supports_multiple_insert = True
    ref = _ref_db()
    a = ref.insert("foo", name="bob", created=webpy.SQLLiteral("NOW()"), _test=True)
    b = mine.insert("foo", name="bob", created=web.SQLLiteral("NOW()"), _test=True)
    assert (str(a), a.query(), a.values()) == (str(b), b.query(), b.values())
    rows = [{"name": "foo", "email": "f@x"}, {"name": "bar", "email": "b@x"}]
    a = ref.multiple_insert("person", values=rows, _test=True)
    b = mine.multiple_insert("person", values=rows, _test=True)
    assert (str(a), a.query("format"), a.values()) == (str(b), b.query("format"), b.values())
    for left, lst in [("foo = ", []), ("foo = ", [1]), ("foo = ", 1), ("foo = ", [1, "x", 3])]:
        assert repr(web.sqlors(left, lst)) == repr(webpy.sqlors(left, lst))
    for value in [True, 3, "x", [2, 3], {3, 2, 4}, None]:
        assert repr(web.sqlquote(value)) == repr(webpy.sqlquote(value))
    assert web.sqllist(["a", "b"]) == webpy.sqllist(["a", "b"]) == "a, b"
    assert repr(wdb.sqlwhere([("a", 1), ("b", "x")])) == repr(
        webpy_db.sqlwhere([("a", 1), ("b", "x")]))


def test_names_resolve_as_web_attributes() -> None:
    for name in webpy_db.__all__:
        assert getattr(web, name) is getattr(wdb, name), name
    assert web.db is wdb
    assert web.SQLProducer is wdb.DB


def test_reparam_evaluates_no_code() -> None:
    # Only names, attributes, items and literals: a call or an operator is text.
    q = web.reparam("x = $os.system('id')", {"os": os})
    assert isinstance(q.values()[0], type(os.system))  # looked up, never called
    assert q.query("format").endswith("('id')")
    with pytest.raises(KeyError):
        web.reparam("x = $__import__", {})


def test_dburl_and_unknown_dbn() -> None:
    assert wdb.dburl2dict("postgres://j:d%40y@h.example:5432/db?pool_size=3&ssl=verify") == {
        "dbn": "postgres", "user": "j", "pw": "d@y", "db": "db", "host": "h.example",
        "port": 5432, "pool_size": 3, "ssl": "verify"}
    assert wdb.dburl2dict("sqlite:////abs/x.db") == {"dbn": "sqlite", "db": "/abs/x.db"}
    with pytest.raises(web.UnknownDB):
        web.database(dbn="oracle", db="x")
    with pytest.raises(ValueError, match="unknown database URL option"):
        web.database("postgres://u@127.0.0.1/db?password=leak")


@pytest.mark.parametrize(("word", "expected"), [
    ("yes", True), ("ON", True), ("1", True), ("off", False), ("False", False), ("2.5", 2.5)])
def test_dburl_pre_ping_is_a_yes_no_word_or_seconds(word: str, expected: object) -> None:
    parsed = wdb.dburl2dict(f"sqlite:////abs/x.db?pre_ping={word}")
    assert parsed["pre_ping"] == expected and type(parsed["pre_ping"]) is type(expected)


# -- the API on each real server ----------------------------------------------------------


def test_query_with_vars_and_result_shapes(people: wdb.DB) -> None:
    rs = people.query("SELECT * FROM person WHERE age = $age ORDER BY name", vars={"age": 20})
    if people.dbname == "sqlite":
        with pytest.raises(TypeError):
            len(rs)  # web.py's SqliteResultSet has no len() either
    else:
        assert len(rs) == 2
    assert bool(rs)
    first = next(rs)
    assert isinstance(first, Storage) and first.name == "bob" and first["age"] == 20
    assert rs.list() == [Storage(id=3, name="cid", age=20, born=None)]
    assert list(rs) == [] and rs.first() is None and rs.first("none") == "none"
    assert people.query("SELECT * FROM person WHERE age > $a", vars={"a": 99}).list() == []
    assert people.query("UPDATE person SET age = age + 1 WHERE age = 20") == 2
    assert people.select("person", where="id = 1")[0].born == datetime.datetime(
        1990, 1, 2, 3, 4, 5)


def test_select_with_every_keyword(people: wdb.DB) -> None:
    rows = people.select("person", what="age, count(*) AS n", where="age < $max",
                         vars={"max": 100}, group="age", order="age DESC", limit=1, offset=1)
    assert [(r.age, r.n) for r in rows] == [(20, 2)]
    assert names(people.select("person", where={"age": 20}, order="name")) == ["bob", "cid"]
    assert names(people.select("person", where=1)) == ["ann"]
    assert names(people.select(["person"], order="name", limit=2)) == ["ann", "bob"]
    assert names(people.where("person", age=20, name="cid")) == ["cid"]
    assert names(people.where("person", order="id", limit=1)) == ["ann"]


def test_insert_returns_the_new_id(people: wdb.DB) -> None:
    new = people.insert("person", name="dan", age=5)
    assert new == 4
    assert people.select("person", where="id = $i", vars={"i": new}).first().name == "dan"
    assert people.insert("person", seqname=False, name="eve") is None
    if people.dbname == "postgres":
        assert people.insert("person", seqname="person_id_seq", name="fay") == 6
        with pytest.raises(ValueError, match="Invalid sequence name"):
            people.insert("person", seqname="x'); DROP TABLE person; --", name="gus")
    ids = people.multiple_insert("person", [{"name": "h1", "age": 1}, {"name": "h2", "age": 2}])
    got = {r.name: r.id for r in people.select("person", where="age IN $a", vars={"a": [1, 2]})}
    assert list(ids) == [got["h1"], got["h2"]]
    assert people.multiple_insert("person", []) == []
    with pytest.raises(ValueError) if people.supports_multiple_insert else _nothing():
        people.multiple_insert("person", [{"name": "i1"}, {"name": "i2", "age": 1}])


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def test_update_and_delete_return_rowcounts(people: wdb.DB) -> None:
    assert people.update("person", where="age = $a", vars={"a": 20}, age=21) == 2
    assert people.update("person", where={"name": "ann"}, age=31, name="anna") == 1
    assert people.select("person", where=1).first() == Storage(
        id=1, name="anna", age=31, born=datetime.datetime(1990, 1, 2, 3, 4, 5))
    assert people.delete("person", where="age = $a", vars={"a": 21}) == 2
    assert people.delete("person", where="name = $n", vars={"n": "nobody"}) == 0
    assert names(people.select("person")) == ["anna"]


def test_sql_injection_attempts_stay_values(people: wdb.DB) -> None:
    evil = "x'); DROP TABLE person; --"
    new = people.insert("person", name=evil, age=1)
    assert people.select("person", where="name = $n", vars={"n": evil}).first().id == new
    assert people.where("person", name=evil).first().id == new
    assert people.update("person", where="name = $n", vars={"n": evil}, name=evil + "$n") == 1
    assert people.where("person", name=evil + "$n").first().id == new
    assert people.select("person", where="name = $n", vars={"n": "x' OR '1'='1"}).list() == []
    with pytest.raises(Exception):  # noqa: B017 - the driver's own type error
        people.select("person", limit="1; DROP TABLE person").list()
    assert len(people.select("person").list()) == 4  # the table survived


def test_transactions_nest_as_savepoints(people: wdb.DB) -> None:
    with people.transaction():
        people.insert("person", name="t1")
        try:
            with people.transaction():
                people.insert("person", name="t2")
                raise RuntimeError("undo t2")
        except RuntimeError:
            pass
        with people.transaction():
            people.insert("person", name="t3")
    assert set(names(people.select("person"))) == {"ann", "bob", "cid", "t1", "t3"}

    t = people.transaction()
    people.insert("person", name="u1")
    inner = people.transaction()
    people.insert("person", name="u2")
    inner.commit()
    t.rollback()
    assert "u1" not in names(people.select("person"))

    # A failed statement inside a savepoint undoes that savepoint only.
    with people.transaction():
        people.insert("person", name="v1")
        with pytest.raises(Exception), people.transaction():  # noqa: B017 - IntegrityError
            people.insert("person", name="v2")
            people.insert("person", name="ann")  # duplicate
        people.insert("person", name="v3")
    now = set(names(people.select("person")))
    assert {"v1", "v3"} <= now and "v2" not in now


def _ctx_story(db: Any) -> list[Any]:
    """What web.py's db.ctx shows through a transaction with a savepoint and raw statements."""
    seen: list[Any] = [len(db.ctx.transactions)]
    t = db.transaction()
    seen.append(len(db.ctx.transactions))
    cur = db.ctx.db.cursor()
    cur.execute("INSERT INTO person (name, age) VALUES ('raw', 1)")
    t.rollback()  # the raw row goes with the transaction
    seen.append(len(db.ctx.transactions))
    seen.append(sorted(r.name for r in db.select("person")))
    t = db.transaction()
    inner = db.transaction()
    seen.append(len(db.ctx.transactions))
    inner.commit()
    seen.append(len(db.ctx.transactions))
    t.commit()
    seen.append(len(db.ctx.transactions))
    before = db.ctx.dbq_count
    db.select("person")
    seen.append(db.ctx.dbq_count - before)
    with db.transaction():
        db.ctx.db.cursor().execute("INSERT INTO person (name, age) VALUES ('kept', 2)")
    seen.append(sorted(r.name for r in db.select("person")))
    return seen


def test_db_ctx_matches_webpy(people: wdb.DB, tmp_path: Any) -> None:
    reference = webpy.database(dbn="sqlite", db=str(tmp_path / "ref.db"))
    reference.query(_DDL["sqlite"])
    reference.multiple_insert("person", [{"name": n, "age": 1} for n in ("ann", "bob", "cid")])
    expected = _ctx_story(reference)
    assert expected == [0, 1, 0, ["ann", "bob", "cid"], 2, 1, 0, 1, ["ann", "bob", "cid", "kept"]]
    assert _ctx_story(people) == expected


def test_db_ctx_ends_the_outermost_transaction_and_has_no_connection_outside(
        people: wdb.DB) -> None:
    """web.py's ctx.commit()/rollback() end the connection's transaction and leave its
    transaction objects open; webmini's end the outermost transaction object."""
    people.transaction()
    people.transaction()
    people.insert("person", name="gone")
    people.ctx.rollback()
    assert people.ctx.transactions == []
    assert "gone" not in names(people.select("person"))
    people.transaction()
    people.insert("person", name="kept")
    people.ctx.commit()
    assert people.ctx.transactions == [] and "kept" in names(people.select("person"))
    # web.py holds a connection per thread; webmini's exists inside a transaction only.
    with pytest.raises(wdb.TransactionError, match="inside db.transaction"):
        people.ctx.db  # noqa: B018
    people.ctx.commit()  # nothing open: nothing to do
    people.ctx.rollback()


def test_uncommitted_rows_are_invisible_to_other_greenlets(people: wdb.DB) -> None:
    seen: list[list[str]] = []
    with people.transaction():
        people.insert("person", name="hidden")
        gevent.spawn(lambda: seen.append(names(people.where("person", name="hidden")))).join(10)
    assert seen == [[]]
    assert names(people.where("person", name="hidden")) == ["hidden"]


def test_printing(people: wdb.DB, capsys: pytest.CaptureFixture[str]) -> None:
    people.printing = True
    try:
        people.select("person", where="name = $n", vars={"n": "bob"})
    finally:
        people.printing = False
    err = capsys.readouterr().err
    assert "SELECT * FROM person WHERE name = 'bob'" in err


def test_failed_queries_leak_no_pool_slot(db: wdb.DB, request: pytest.FixtureRequest,
                                          tmp_path_factory: Any) -> None:
    small = _make(db.dbname, request, tmp_path_factory, pool_size=2, acquire_timeout=2.0)
    try:
        for _ in range(6):
            with pytest.raises(Exception):  # noqa: B017 - the driver's error
                small.query("SELECT * FROM no_such_table_here")
            with pytest.raises(Exception), small.transaction():  # noqa: B017
                small.query("SELECT 1/0 FROM no_such_table_here")
        def killed() -> None:
            with small.transaction():
                small.query("SELECT 1")
                gevent.sleep(10)
        g = gevent.spawn(killed)
        gevent.sleep(0.2)
        g.kill()
        assert small.query("SELECT 1 AS one").first().one == 1
        pool = small.backend.pool._get_pool() if db.dbname == "mysql" else small.backend._get_pool()
        assert pool.in_use == 0
        # both slots are still usable at once
        jobs = [gevent.spawn(lambda: small.query("SELECT 2 AS two").first().two) for _ in range(4)]
        gevent.joinall(jobs, timeout=10, raise_error=True)
        assert [j.value for j in jobs] == [2, 2, 2, 2]
    finally:
        small.close()


def test_sqlite_calls_leave_the_hub_free(tmp_path: Any) -> None:
    sdb = web.database(dbn="sqlite", db=str(tmp_path / "slow.db"))
    sdb.query("CREATE TABLE n (x INT)")
    sdb.multiple_insert("n", [{"x": i} for i in range(2000)])
    def slow_queries() -> None:
        sdb.close()  # cold: the connects are measured too
        # a deliberately slow statement (~0.1 s of C code per query)
        jobs = [gevent.spawn(lambda: sdb.query(
            "SELECT count(*) AS c FROM n a, n b WHERE a.x < b.x").first().c) for _ in range(3)]
        gevent.joinall(jobs, raise_error=True)
        assert [j.value for j in jobs] == [1999000] * 3

    stall = hub_stall(slow_queries)
    assert stall.longest_slice < 0.005, stall  # no single step held the hub 5 ms


def test_postgres_is_cooperative(request: pytest.FixtureRequest, tmp_path_factory: Any) -> None:
    pg = _make("postgres", request, tmp_path_factory, pool_size=10)
    elapsed: list[float] = []

    def fifty_sleeps() -> None:
        pg.close()  # a cold pool: ten connects (TCP, SCRAM) in the measured run
        start = time.perf_counter()
        jobs = [gevent.spawn(lambda: pg.query("SELECT pg_sleep(0.2)").list()) for _ in range(50)]
        gevent.joinall(jobs, timeout=30, raise_error=True)
        elapsed.append(time.perf_counter() - start)

    try:
        stall = hub_stall(fifty_sleeps)
        # 50 sleeps over 10 connections overlap: 5 rounds, far below the 10 s of a serial run.
        assert min(elapsed) < 5.0, elapsed
        assert stall.longest_slice < 0.005, stall  # no single step held the hub 5 ms
    finally:
        pg.close()


def test_web_py_dbstore_calls(db: wdb.DB) -> None:
    """The calls web.py's session DBStore makes, as it makes them (vars=locals())."""
    db.query("DROP TABLE IF EXISTS sessions")
    db.query("CREATE TABLE sessions (session_id CHAR(128) UNIQUE NOT NULL,"
             " atime TIMESTAMP NOT NULL, data TEXT)")
    table = "sessions"
    key, pickled = "abc123", "c2Vzc2lvbg=="
    now = datetime.datetime(2024, 5, 1, 12, 0, 0)
    assert db.insert(table, False, session_id=key, atime=now, data=pickled) is None
    with pytest.raises(IndexError):
        db.select(table, where="session_id=$key", vars={"key": "missing"})[0]
    row = db.select(table, where="session_id=$key", vars=locals())[0]
    assert (row.session_id.strip(), row.data) == (key, pickled)
    assert bool(list(db.select(table, where="session_id=$key", vars=locals())))
    later = now + datetime.timedelta(hours=1)
    assert db.update(table, where="session_id=$key", data="bmV3", atime=later, vars=locals()) == 1
    assert db.where(table, session_id=key).first().data == "bmV3"
    last_allowed_time = now + datetime.timedelta(minutes=30)
    assert db.delete(table, where="$last_allowed_time > atime", vars=locals()) == 0
    last_allowed_time = later + datetime.timedelta(minutes=30)
    assert db.delete(table, where="$last_allowed_time > atime", vars=locals()) == 1
    assert db.select(table).list() == []


def test_tls_settings_reach_the_backends() -> None:
    remote = web.database(dbn="postgres", host="db.example.com", db="app", user="u", pw="p")
    assert remote.backend.ssl_mode == "verify"  # SECURITY: off the machine, verified TLS
    local = web.database("postgres://u:p@127.0.0.1/app?ssl=required&pool_size=2")
    assert (local.backend.ssl_mode, local.backend.pool_size) == ("required", 2)
    with pytest.raises(ValueError, match="postgres ssl"):
        web.database(dbn="postgres", host="127.0.0.1", db="app", ssl="preferred")
    mysql = web.database("mysql://u:p@db.example.com/app?ssl=preferred")
    assert mysql.backend.pool.ssl_mode == "preferred"
    assert web.database(dbn="mysql", host="db.example.com", db="a").backend.pool.ssl_mode == "verify"


def test_column_names_from_a_request_cannot_write_sql(people: wdb.DB) -> None:
    # An app doing db.insert("person", **web.input()) hands the client the column names.
    evil = {"name) VALUES ('x'); DROP TABLE person; --": "a"}
    for call in (
        lambda: people.insert("person", **evil),
        lambda: people.multiple_insert("person", [evil, evil]),
        lambda: people.update("person", where="id = 1", **evil),
        lambda: people.where("person", **{"1=1 OR name": "x"}),
        lambda: people.select("person", where={"id = 1 OR 1": 1}),
    ):
        with pytest.raises(ValueError, match="not a column name"):
            call()
    assert names(people.where("person", order="name", **{"person.age": 20})) == ["bob", "cid"]
    assert people.insert("person", name="ok", age=3) == 4
    assert len(people.select("person").list()) == 4


def test_a_failed_request_leaks_no_connection(db: wdb.DB, request: pytest.FixtureRequest,
                                              tmp_path_factory: Any) -> None:
    from webmini.testing import TestClient

    small = _make(db.dbname, request, tmp_path_factory, pool_size=1, acquire_timeout=0.5)

    class Broken:
        def GET(self) -> str:
            with small.transaction():
                small.query("SELECT 1")
                small.query("SELECT * FROM no_such_table_here")
            return "unreachable"

    class Fine:
        def GET(self) -> str:
            return str(small.query("SELECT 41 + 1 AS n").first().n)

    holding, release = gevent.event.Event(), gevent.event.Event()

    class Hold:
        def GET(self) -> str:
            with small.transaction():
                small.query("SELECT 1")
                holding.set()
                release.wait(10)
            return "held"

    app = web.application(("/broken", "Broken", "/fine", "Fine", "/hold", "Hold"), locals())
    client = TestClient(app.wsgifunc())
    try:
        for _ in range(5):
            assert client.request("GET", "/broken").status.startswith("500")
        assert client.request("GET", "/fine").text == "42"
        holder = gevent.spawn(client.request, "GET", "/hold")
        assert holding.wait(5)
        busy = client.request("GET", "/fine")  # the only connection is held: 503, not a hang
        assert busy.status.startswith("503") and busy.headers.get("Retry-After") == "1"
        release.set()
        assert holder.get(timeout=10).text == "held"
        assert client.request("GET", "/fine").text == "42"
    finally:
        small.close()
