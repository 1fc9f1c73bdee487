"""web.session.DBStore over web.database, on a real SQLite file (web.py's sessions table)."""

import datetime
import json

import pytest

import webmini as web
from webmini.testing import Browser
from webmini.webpy.session import Session
from webmini.webpy.session_stores import DBStore

SCHEMA = """create table sessions (
    session_id char(128) UNIQUE NOT NULL,
    atime timestamp NOT NULL default current_timestamp,
    data text
)"""


@pytest.fixture
def db(tmp_path):
    database = web.database(dbn="sqlite", db=str(tmp_path / "app.sqlite"))
    database.query(SCHEMA)
    return database


def make_app(db):
    class count:
        def GET(self):
            session.n = session.get("n", 0) + 1
            session.when = datetime.date(2024, 1, 2)
            return str(session.n)

    class logout:
        def POST(self):
            session.kill()
            return "bye"

    app = web.application(("/count", "count", "/logout", "logout"), locals())
    session = Session(app, DBStore(db, "sessions"))
    return app


def test_dbstore_round_trip_on_sqlite(db):
    b = Browser(make_app(db))
    assert [b.get("/count").text for _ in range(3)] == ["1", "2", "3"]
    sid = b.cookies["webpy_session_id"]
    [row] = list(db.select("sessions", where="session_id=$sid", vars={"sid": sid}))
    stored = json.loads(row.data)  # JSON, never a pickle
    assert stored["n"] == 3 and stored["when"]["__webmini_type__"] == "date"
    assert b.post("/logout").text == "bye"
    assert list(db.select("sessions", where="session_id=$sid", vars={"sid": sid})) == []
    assert b.get("/count").text == "1"


def test_dbstore_ignores_forged_ids_and_pickles(db):
    store = DBStore(db, "sessions")
    db.insert("sessions", session_id="a" * 40, data="gASVCAAAAAAAAAB9lC4=")  # base64 pickle
    assert ("a" * 40) in store
    with pytest.raises(KeyError):
        store["a" * 40]
    assert ("' OR '1'='1") not in store
    b = Browser(make_app(db))
    b.cookies["webpy_session_id"] = "a" * 40
    assert b.get("/count").text == "1" and b.cookies["webpy_session_id"] != "a" * 40


def test_dbstore_cleanup(db):
    store = DBStore(db, "sessions")
    store["b" * 40] = {"x": 1}
    store["c" * 40] = {"x": 2}
    old = datetime.datetime.now() - datetime.timedelta(hours=2)
    db.update("sessions", where="session_id=$s", vars={"s": "b" * 40}, atime=old)
    store.cleanup(3600)
    assert ("b" * 40) not in store and store["c" * 40] == {"x": 2}
