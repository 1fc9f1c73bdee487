"""webmini.stores.mysql against a real, private MariaDB (see tests/support/mariadb.py)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import pymysql
import pytest
from support import free_port

from localservices import wait_until
from webmini.errors import ServiceUnavailable
from webmini.storage import Storage
from webmini.stores.mysql import (
    ConnectError,
    Database,
    DatabaseUnavailable,
    ExecResult,
    PoolTimeout,
)

MakeDB = Callable[..., Database]


@pytest.fixture
def make_db(mariadb: Any) -> Iterator[MakeDB]:
    """Build Databases on the test server; close them all afterwards."""
    made: list[Database] = []

    def make(**kwargs: Any) -> Database:
        args = {**mariadb.params(), "acquire_timeout": 5.0, "connect_timeout": 5.0}
        args.update(kwargs)
        db = Database(**args)
        made.append(db)
        return db

    yield make
    for db in made:
        db.close()


@pytest.fixture
def table(make_db: MakeDB) -> str:
    """A fresh InnoDB table ``items(id, name)``."""
    db = make_db(pool_size=1)
    db.execute("DROP TABLE IF EXISTS items")
    db.execute(
        "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL)"
        " ENGINE=InnoDB CHARACTER SET utf8mb4"
    )
    return "items"


def conn_id(db: Database) -> int:
    row = db.query_one("SELECT CONNECTION_ID() AS id")
    assert row is not None
    return int(row.id)


# -- basics -------------------------------------------------------------------------


def test_query_helpers_return_storage(make_db: MakeDB, table: str) -> None:
    db = make_db(pool_size=2)
    res = db.execute("INSERT INTO items (name) VALUES (%s)", ("a",))
    assert isinstance(res, ExecResult) and res.rowcount == 1 and res.lastrowid
    many = db.executemany("INSERT INTO items (name) VALUES (%s)", [("b",), ("c",)])
    assert many.rowcount == 2
    rows = db.query("SELECT id, name FROM items ORDER BY id")
    assert [r.name for r in rows] == ["a", "b", "c"]
    assert isinstance(rows[0], Storage) and rows[0]["id"] == res.lastrowid
    assert db.query_one("SELECT name FROM items WHERE name = %s", ("zzz",)) is None
    assert db.query_one("SELECT %(x)s AS x", {"x": 7}) == {"x": 7}
    st = db.stats()
    assert (st.size, st.in_use, st.idle, st.waiting, st.overflow) == (1, 0, 1, 0, 0)


def test_statements_after_partly_read_and_multiple_results_stay_in_step(make_db: MakeDB) -> None:
    """A connection's results never leak into its next statement, whoever checks it out.

    query_one leaves rows unread; a procedure answers two result sets and a
    status; a failing statement discards the connection with its state.
    """
    db = make_db(pool_size=1)
    db.execute("DROP PROCEDURE IF EXISTS two_results")
    db.execute("CREATE PROCEDURE two_results() BEGIN SELECT 1 AS a UNION SELECT 2; "
               "SELECT 'second' AS b; END")
    first = conn_id(db)
    with db.connection() as conn:
        assert conn.query_one("SELECT seq AS n FROM seq_1_to_100") == {"n": 1}
        assert conn.query_one("SELECT 'next' AS w") == {"w": "next"}
        assert conn.query("CALL two_results()") == [{"a": 1}, {"a": 2}]
        assert conn.query("SELECT 3 AS c") == [{"c": 3}]
    assert db.query("CALL two_results()") == [{"a": 1}, {"a": 2}]
    assert db.query_one("SELECT 4 AS d") == {"d": 4}  # another checkout, same connection
    assert conn_id(db) == first
    with pytest.raises(pymysql.err.ProgrammingError):
        db.query("SELECT * FROM no_such_table")
    assert db.query_one("SELECT 5 AS e") == {"e": 5}
    assert conn_id(db) != first  # the failed connection was replaced, its cursor with it


def test_from_url_and_repr_hide_password() -> None:
    db = Database.from_url(
        "mysql://app:p%40ss%3Aw%2Frd@db.local:3307/shop?pool_size=3&max_overflow=2"
        "&acquire_timeout=0.5&pre_ping=2.5&recycle=0"
    )
    assert (db.host, db.port, db.user, db.database) == ("db.local", 3307, "app", "shop")
    assert db._connect_args["password"] == "p@ss:w/rd"
    assert (db.pool_size, db.max_overflow, db.acquire_timeout) == (3, 2, 0.5)
    assert db.pre_ping == 2.5 and db.recycle is None
    assert "p@ss" not in repr(db) and "app@db.local:3307/shop" in repr(db)
    with pytest.raises(ValueError, match="unknown database URL option"):
        Database.from_url("mysql://u@h/d?poolsize=3")
    with pytest.raises(ValueError):
        Database.from_url("postgres://u@h/d")


def test_pool_timeout_is_a_503() -> None:
    assert issubclass(PoolTimeout, ServiceUnavailable)
    assert issubclass(ConnectError, ServiceUnavailable)
    exc = PoolTimeout("detail for the log")
    assert exc.status_code == 503 and str(exc) == "detail for the log"
    assert "detail" not in str(exc.data)  # the HTTP body stays generic


# -- concurrency --------------------------------------------------------------------


def test_fifty_sleeps_over_ten_connections_run_concurrently(make_db: MakeDB) -> None:
    db = make_db(pool_size=10)
    t0 = time.monotonic()
    jobs = [gevent.spawn(db.query, "SELECT SLEEP(0.2) AS s") for _ in range(50)]
    gevent.joinall(jobs, timeout=15, raise_error=True)
    elapsed = time.monotonic() - t0
    assert all(j.successful() and j.value == [{"s": 0}] for j in jobs)
    # 5 rounds of 0.2 s over 10 connections; serialised it would take 10 s.
    assert 0.9 < elapsed < 2.5, elapsed
    st = db.stats()
    assert (st.size, st.in_use, st.idle, st.connects) == (10, 0, 10, 10)


def test_acquire_timeout_raises_clear_error(make_db: MakeDB) -> None:
    db = make_db(pool_size=1, acquire_timeout=0.3)
    release = gevent.event.Event()

    def hold() -> None:
        with db.connection() as conn:
            conn.query("SELECT 1")
            release.wait()

    holder = gevent.spawn(hold)
    gevent.sleep(0.05)
    waiter = gevent.spawn(db.query, "SELECT 1")
    gevent.sleep(0.05)
    assert db.stats().waiting == 1 and db.stats().in_use == 1
    t0 = time.monotonic()
    with pytest.raises(PoolTimeout) as info:
        db.query("SELECT 1")
    assert 0.25 < time.monotonic() - t0 < 2.0
    assert "pool_size=1" in str(info.value) and info.value.status_code == 503
    waiter.join(2)
    assert isinstance(waiter.exception, PoolTimeout)
    release.set()
    holder.join(2)
    st = db.stats()
    assert (st.in_use, st.waiting, st.timeouts, st.size) == (0, 0, 2, 1)
    assert db.query("SELECT 1 AS one") == [{"one": 1}]


def test_pool_timeout_becomes_503_response(make_db: MakeDB) -> None:
    import webmini as web
    from webmini.testing import TestClient

    db = make_db(pool_size=1, acquire_timeout=0.2)

    class Count:
        def GET(self) -> Any:
            return dict(db.query_one("SELECT 41 + 1 AS n") or {})

    app = web.application(("/count", "Count"), {"Count": Count})
    client = TestClient(app)
    assert client.get("/count").json() == {"n": 42}
    release = gevent.event.Event()

    def hold() -> None:
        with db.connection():  # another greenlet takes the only slot
            release.wait()

    holder = gevent.spawn(hold)
    gevent.sleep(0.05)
    res = client.get("/count")
    release.set()
    holder.join(2)
    assert res.status_code == 503
    assert b"pool" not in res.body.lower()
    assert client.get("/count").status_code == 200


def test_waiters_are_served_in_order(make_db: MakeDB) -> None:
    db = make_db(pool_size=1)
    order: list[str] = []

    def use(name: str, again: bool = False) -> None:
        with db.connection():
            order.append(name)
            if again:  # hold the only connection until "b" waits for it
                assert wait_until(lambda: db.stats().waiting == 1, 5)
        if again:  # releases and re-acquires at once: must queue behind "b"
            with db.connection():
                order.append(name + "2")

    a = gevent.spawn(use, "a", True)
    gevent.sleep(0.02)
    b = gevent.spawn(use, "b")
    gevent.joinall([a, b], timeout=5, raise_error=True)
    assert order == ["a", "b", "a2"]


def test_connection_belongs_to_one_greenlet(make_db: MakeDB) -> None:
    db = make_db(pool_size=2)
    with db.connection() as conn:
        with pytest.raises(pymysql.err.InterfaceError, match="does not own"):
            gevent.spawn(conn.query, "SELECT 1").get(timeout=5)
        other = gevent.spawn(conn_id, db).get(timeout=5)  # its own connection
        assert conn.query("SELECT CONNECTION_ID() AS id")[0].id != other
    with pytest.raises(pymysql.err.InterfaceError, match="outside"):
        conn.query("SELECT 1")


def test_overflow_connections_are_closed_when_returned(make_db: MakeDB) -> None:
    db = make_db(pool_size=2, max_overflow=1, acquire_timeout=0.2)
    go = gevent.event.Event()

    def hold() -> None:
        with db.connection() as conn:
            conn.query("SELECT 1")
            go.wait()

    holders = [gevent.spawn(hold) for _ in range(3)]
    gevent.sleep(0.1)
    st = db.stats()
    assert (st.size, st.in_use, st.overflow) == (3, 3, 1)
    with pytest.raises(PoolTimeout):
        db.query("SELECT 1")
    go.set()
    gevent.joinall(holders, timeout=2, raise_error=True)
    st = db.stats()
    assert (st.size, st.in_use, st.idle, st.overflow) == (2, 0, 2, 0)


# -- failures discard connections, never leak slots --------------------------------------


def test_gevent_timeout_mid_query_discards_connection(make_db: MakeDB) -> None:
    db = make_db(pool_size=1)
    first = conn_id(db)
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.2):
        db.query("SELECT SLEEP(2)")
    st = db.stats()
    assert (st.in_use, st.size, st.discards) == (0, 0, 1)
    t0 = time.monotonic()
    assert conn_id(db) != first  # a fresh connection in the freed slot, at once
    assert time.monotonic() - t0 < 1.0


def test_killed_greenlet_mid_query_leaks_no_slot(make_db: MakeDB) -> None:
    db = make_db(pool_size=2, acquire_timeout=0.2)
    victim = gevent.spawn(db.query, "SELECT SLEEP(2)")
    gevent.sleep(0.2)
    assert db.stats().in_use == 1
    victim.kill(block=True, timeout=2)
    assert victim.dead
    st = db.stats()
    assert (st.in_use, st.size, st.discards) == (0, 0, 1)

    # Both slots are free: two greenlets hold a connection at the same time.
    both = gevent.event.Event()
    inside: list[int] = []

    def hold() -> None:
        with db.connection() as conn:
            inside.append(conn.query("SELECT CONNECTION_ID() AS id")[0].id)
            if len(inside) == 2:
                both.set()
            assert both.wait(2)

    gevent.joinall([gevent.spawn(hold), gevent.spawn(hold)], timeout=5, raise_error=True)
    assert len(set(inside)) == 2 and db.stats().in_use == 0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections but never sends a MySQL handshake."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


def test_killed_greenlet_mid_connect_leaks_no_slot(silent_server: int) -> None:
    db = Database(host="127.0.0.1", port=silent_server, user="x", pool_size=1,
                  connect_timeout=10)
    victim = gevent.spawn(db.query, "SELECT 1")
    gevent.sleep(0.2)
    assert db.stats().in_use == 1  # the slot is counted while the connect is pending
    victim.kill(block=True, timeout=2)
    assert db.stats().in_use == 0 and db.stats().size == 0


def test_connect_timeout_bounds_the_handshake(silent_server: int) -> None:
    db = Database(host="127.0.0.1", port=silent_server, user="x", pool_size=1,
                  connect_timeout=0.3, read_timeout=30)
    t0 = time.monotonic()
    with pytest.raises(ConnectError) as info:
        db.query("SELECT 1")
    assert 0.25 < time.monotonic() - t0 < 2.0
    assert info.value.status_code == 503 and "within 0.3 s" in str(info.value)
    assert db.stats().in_use == 0


def test_connection_refused_is_a_connect_error() -> None:
    port = free_port()  # nothing listens there
    db = Database(host="127.0.0.1", port=port, user="x", pool_size=1)
    with pytest.raises(ConnectError):
        db.query("SELECT 1")
    assert db.stats().in_use == 0


def test_error_inside_block_discards_and_poisons_connection(make_db: MakeDB) -> None:
    db = make_db(pool_size=1)
    first = conn_id(db)
    with db.connection() as conn:
        with pytest.raises(pymysql.err.ProgrammingError):
            conn.query("SELEKT 1")
        with pytest.raises(pymysql.err.InterfaceError, match="discarded"):
            conn.query("SELECT 1")
    assert db.stats().discards == 1 and conn_id(db) != first
    with pytest.raises(ZeroDivisionError), db.connection():
        1 / 0  # noqa: B018 - any exception through the block discards
    assert db.stats().discards == 2


def kill(mariadb: Any, *ids: int) -> None:
    with mariadb.root_connection() as root, root.cursor() as cur:
        for victim in ids:
            cur.execute("KILL %s", (victim,))


def test_pre_ping_true_replaces_a_connection_killed_server_side(make_db: MakeDB, mariadb: Any) -> None:
    db = make_db(pool_size=1, pre_ping=True)
    victim = conn_id(db)
    kill(mariadb, victim)
    assert conn_id(db) != victim
    assert db.stats().discards == 1


def test_default_pre_ping_checks_a_connection_idle_past_its_threshold(make_db: MakeDB, mariadb: Any) -> None:
    db = make_db(pool_size=1, pre_ping=0.2)
    victim = conn_id(db)
    kill(mariadb, victim)
    gevent.sleep(0.3)  # idle longer than pre_ping: pinged at checkout, found dead, replaced
    assert conn_id(db) != victim
    assert db.stats().discards == 1
    assert Database(**mariadb.params()).pre_ping == 1.0  # the default: ping after 1 s idle


def test_a_dead_connection_makes_its_idle_siblings_checked(make_db: MakeDB, mariadb: Any) -> None:
    db = make_db(pool_size=3)  # default pre_ping: no ping for a recently used connection
    ids: list[int] = []
    got = gevent.event.Event()

    def hold() -> None:
        with db.connection():
            ids.append(conn_id(db))
            got.wait()

    greenlets = [gevent.spawn(hold) for _ in range(3)]
    while len(ids) < 3:
        gevent.sleep(0.01)
    got.set()
    gevent.joinall(greenlets, raise_error=True)
    kill(mariadb, *ids)  # a server restart, as seen from the pool: every idle connection dead
    with pytest.raises(pymysql.err.OperationalError):
        db.query("SELECT 1")  # recently used: not pinged, fails once
    fresh = {conn_id(db) for _ in range(3)}  # the two other idle ones are pinged and replaced
    assert not fresh & set(ids)
    assert db.stats().discards == 3 and db.stats().in_use == 0


def test_without_pre_ping_a_dead_connection_fails_once(make_db: MakeDB, mariadb: Any) -> None:
    db = make_db(pool_size=1, pre_ping=False)
    victim = conn_id(db)
    with mariadb.root_connection() as root, root.cursor() as cur:
        cur.execute("KILL %s", (victim,))
    with pytest.raises(pymysql.err.OperationalError):
        db.query("SELECT 1")
    assert conn_id(db) != victim and db.stats().in_use == 0


def test_connection_lost_mid_statement_is_a_503(make_db: MakeDB, mariadb: Any) -> None:
    """A statement whose connection dies under it (KILL, a restart) raises
    DatabaseUnavailable: a 503 with Retry-After for the client (not a 500), still a
    pymysql OperationalError with the driver's errno for code that catches that."""
    import webmini as web
    from webmini.testing import TestClient

    db = make_db(pool_size=1, pre_ping=False)
    started = gevent.event.Event()

    class Slow:
        def GET(self) -> Any:
            started.set()
            return dict(db.query_one("SELECT SLEEP(5) AS s") or {})

    client = TestClient(web.application(("/slow", "Slow"), {"Slow": Slow}))
    victim = conn_id(db)
    answer = gevent.spawn(client.get, "/slow")
    started.wait(5)
    gevent.sleep(0.2)
    kill(mariadb, victim)
    res = answer.get(timeout=5)
    assert res.status_code == 503 and res.headers["Retry-After"] == "1"
    assert b"lost" not in res.body.lower()  # the driver's message stays in the log

    victim = conn_id(db)
    slow = gevent.spawn(db.query, "SELECT SLEEP(5)")
    gevent.sleep(0.3)
    kill(mariadb, victim)
    with pytest.raises(DatabaseUnavailable) as caught:
        slow.get(timeout=5)
    assert isinstance(caught.value, pymysql.err.OperationalError)
    assert caught.value.args[0] in (2013, 1927) and caught.value.status_code == 503
    assert db.stats().in_use == 0 and db.query_one("SELECT 1 AS one") == {"one": 1}


def test_read_timeout_ends_a_statement_and_frees_its_slot(make_db: MakeDB) -> None:
    db = make_db(pool_size=1, read_timeout=0.4, write_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(pymysql.err.OperationalError, match="timed out"):
        db.query("SELECT SLEEP(5)")
    assert 0.4 <= time.monotonic() - started < 1.5
    assert db.stats().in_use == 0 and db.stats().discards == 1
    assert db.query_one("SELECT 1 AS one") == {"one": 1}
    with pytest.raises(pymysql.err.OperationalError, match="timed out"), db.transaction() as tx:
        tx.execute("SELECT SLEEP(5)")
    assert db.stats().in_use == 0 and db.stats().discards == 2


def test_time_limit_ends_only_the_slow_statement(make_db: MakeDB) -> None:
    """The pool's watchdog ends the statement past read_timeout; statements running
    beside it, fast ones and ones shorter than the limit, are untouched."""
    # 1.2 s between the shorter statement's end and the limit: a loaded machine may
    # run the watchdog's timer late, never early.
    db = make_db(pool_size=6, read_timeout=1.5)
    slow = gevent.spawn(db.query, "SELECT SLEEP(5)")
    almost = gevent.spawn(db.query_one, "SELECT SLEEP(0.3) AS s")
    fast = [gevent.spawn(db.query_one, "SELECT %s AS n", (i,)) for i in range(20)]
    gevent.joinall([slow, almost, *fast], timeout=10)
    assert isinstance(slow.exception, pymysql.err.OperationalError)
    assert "timed out" in str(slow.exception) and "1.5 s" in str(slow.exception)
    assert almost.value == {"s": 0}
    assert [g.value for g in fast] == [{"n": i} for i in range(20)]
    assert db.stats().discards == 1 and db.stats().in_use == 0


def test_statements_use_no_socket_timeouts_but_raw_use_does(make_db: MakeDB) -> None:
    """PERF: pymysql's sockets carry no timeout (no gevent timer per wait); a statement
    sent on ``conn.raw`` directly, around the watchdog, gets pymysql's own timeouts."""
    db = make_db(pool_size=1, read_timeout=0.5, write_timeout=0.4)
    with db.connection() as conn:
        conn.query_one("SELECT 1")
        pooled_raw = conn._pooled.raw
        assert pooled_raw._read_timeout is None and pooled_raw._sock.gettimeout() is None
        raw = conn.raw
        assert (raw._read_timeout, raw._write_timeout) == (0.5, 0.4)
    started = time.monotonic()
    with pytest.raises(pymysql.err.OperationalError, match="timed out"), \
            db.connection() as conn, conn.raw.cursor() as cur:
        cur.execute("SELECT SLEEP(5)")
    assert time.monotonic() - started < 2


def test_no_time_limit_when_timeouts_are_off(make_db: MakeDB) -> None:
    db = make_db(pool_size=1, read_timeout=None, write_timeout=None)
    assert db.query_one("SELECT SLEEP(0.2) AS s") == {"s": 0}
    assert db._watchdog is None


def test_watchdog_replaces_a_dead_watcher() -> None:
    """SECURITY: a killed watcher greenlet never leaves statements unbounded."""
    from webmini.stores.watchdog import StatementWatchdog

    aborted: list[str] = []
    dog = StatementWatchdog(0.1, aborted.append)
    dog.begin("first")
    assert dog._greenlet is not None
    dog._greenlet.kill()
    dog.begin("second")  # a new watcher
    gevent.sleep(0.4)
    assert sorted(aborted) == ["first", "second"]
    assert dog.end("first") is True and dog.end("second") is True
    assert dog.end("second") is False and dog.running() == 0
    dog.begin("third")
    assert dog.end("third") is False  # ended in time: not aborted
    dog.stop()
    gevent.sleep(0.3)
    assert dog._greenlet.dead  # stopped once nothing is running


def test_watchdog_copied_into_a_forked_child_aborts_nothing() -> None:
    """A watcher greenlet copied by fork never shuts the parent's sockets from the child."""
    from webmini.stores.watchdog import StatementWatchdog

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's watchdog, its statement "in flight"
        code = 1
        try:
            aborted: list[str] = []
            dog = StatementWatchdog(0.1, aborted.append)
            dog._pid = os.getppid()  # as if created in the parent before the fork
            dog.begin("parent's statement")
            gevent.sleep(0.4)
            code = 0 if aborted == [] and dog._greenlet is not None and dog._greenlet.dead else 3
        finally:
            os.write(write_end, bytes([code]))
            os._exit(0)
    os.close(write_end)
    result = os.read(read_end, 1)
    os.waitpid(pid, 0)
    os.close(read_end)
    assert result == b"\x00"


def test_recycle_replaces_old_connections(make_db: MakeDB) -> None:
    db = make_db(pool_size=1, recycle=0.3)
    first = conn_id(db)
    assert conn_id(db) == first
    gevent.sleep(0.4)
    assert conn_id(db) != first
    assert db.stats().connects == 2


# -- transactions ------------------------------------------------------------------


def names(db: Database) -> list[str]:
    return [r.name for r in db.query("SELECT name FROM items ORDER BY id")]


def test_transaction_commits(make_db: MakeDB, table: str) -> None:
    db = make_db(pool_size=2)
    other = make_db(pool_size=1)
    with db.transaction() as tx:
        tx.execute("INSERT INTO items (name) VALUES (%s)", ("a",))
        assert db.query("SELECT name FROM items") == [{"name": "a"}]  # same connection
        seen = gevent.spawn(names, other).get(timeout=5)
        assert seen == []  # not committed yet
    assert names(other) == ["a"]
    assert db.stats().discards == 0


def test_transaction_rolls_back_and_discards_on_error(make_db: MakeDB, table: str) -> None:
    db = make_db(pool_size=1)
    with pytest.raises(ValueError), db.transaction() as tx:
        tx.execute("INSERT INTO items (name) VALUES (%s)", ("lost",))
        raise ValueError("boom")
    assert names(db) == []
    assert db.stats().discards == 1


def test_transaction_interrupted_by_timeout(make_db: MakeDB, table: str) -> None:
    db = make_db(pool_size=1)
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.2), db.transaction() as tx:
        tx.execute("INSERT INTO items (name) VALUES (%s)", ("lost",))
        tx.query("SELECT SLEEP(2)")
    st = db.stats()
    assert (st.in_use, st.size, st.discards) == (0, 0, 1)
    assert names(db) == []


def test_nested_transaction_is_a_savepoint(make_db: MakeDB, table: str) -> None:
    db = make_db(pool_size=1)
    with db.transaction() as tx:
        tx.execute("INSERT INTO items (name) VALUES ('outer')")
        with pytest.raises(KeyError), db.transaction() as inner:
            inner.execute("INSERT INTO items (name) VALUES ('inner')")
            raise KeyError("x")
        with db.transaction() as inner:
            inner.execute("INSERT INTO items (name) VALUES ('kept')")
    assert names(db) == ["outer", "kept"]
    assert db.stats().discards == 0


# -- parameters ---------------------------------------------------------------------


def test_parameters_are_escaped(make_db: MakeDB, table: str) -> None:
    db = make_db(pool_size=1)
    evil = "x'); DROP TABLE items; -- \\' \" %s %(y)s ` \x00 😀"
    db.execute("INSERT INTO items (name) VALUES (%s)", (evil,))
    assert names(db) == [evil]
    assert db.query_one("SELECT %s AS v", (evil,)) == {"v": evil}
    hit = db.query_one("SELECT COUNT(*) AS n FROM items WHERE name = %(n)s", {"n": "' OR '1'='1"})
    assert hit == {"n": 0}
    assert db.query_one("SHOW TABLES LIKE 'items'") is not None


# -- the server restarts under load ------------------------------------------------------


@pytest.mark.parametrize("crash", [False, True], ids=["clean-restart", "crash-restart"])
def test_survives_server_restart_under_load(make_db: MakeDB, mariadb: Any, crash: bool) -> None:
    pool_size = 5
    db = make_db(pool_size=pool_size, acquire_timeout=3, connect_timeout=2, read_timeout=5)
    gevent.joinall([gevent.spawn(db.query, "SELECT SLEEP(0.05)") for _ in range(pool_size)],
                   raise_error=True)
    assert db.stats().size == pool_size
    stop = gevent.event.Event()
    outcomes: list[tuple[float, BaseException | None]] = []

    def worker(i: int) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                row = db.query_one("SELECT SLEEP(0.05) AS s, %s AS i", (i,))
                assert row == {"s": 0, "i": i}
                outcomes.append((started, None))
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError,
                    ConnectError) as exc:
                outcomes.append((started, exc))
                gevent.sleep(0.02)

    workers = [gevent.spawn(worker, i) for i in range(15)]
    gevent.sleep(0.5)
    mariadb.restart(kill=crash)
    ready = time.monotonic()

    def served_after_restart() -> int:
        return sum(1 for started, exc in outcomes if started > ready + 0.1 and exc is None)

    # Load until 50 queries started after the restart have succeeded (a freshly
    # restarted server on a loaded machine may take longer than usual to reach it).
    wait_until(lambda: served_after_restart() > 50, 15)
    stop.set()
    gevent.joinall(workers, timeout=10, raise_error=True)
    assert all(w.dead for w in workers)

    failures = [exc for _, exc in outcomes if exc is not None]
    assert failures, "the restart broke no in-flight query: nothing was tested"
    later = [exc for started, exc in outcomes if started > ready + 0.1]
    assert len(later) > 50 and all(exc is None for exc in later), later[:3]
    st = db.stats()
    assert (st.size, st.in_use, st.idle, st.waiting) == (pool_size, 0, pool_size, 0)
    with mariadb.root_connection() as root, root.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s",
                    (mariadb.user,))
        assert cur.fetchone()[0] == pool_size  # nothing leaked server-side either


# -- fork ----------------------------------------------------------------------------


def test_child_after_fork_gets_a_fresh_pool(make_db: MakeDB) -> None:
    db = make_db(pool_size=2)
    parent_conn = conn_id(db)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(read_end)
            report: dict[str, Any] = {"id": conn_id(db), "stats": dict(db.stats())}
            db.close()
        except BaseException as exc:
            report = {"error": repr(exc)}
        finally:
            os.write(write_end, json.dumps(report).encode())
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as f:
        report = json.loads(f.read())
    assert os.WIFEXITED(status) and "error" not in report, report
    assert report["id"] != parent_conn
    assert report["stats"]["connects"] == 1 and report["stats"]["size"] == 1
    # The child closed its own pool, not the parent's socket: still the same connection.
    assert conn_id(db) == parent_conn
    assert db.stats().connects == 1
