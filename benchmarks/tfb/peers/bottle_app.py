"""The six TFB test types in Bottle, a simple pool of 10 pymysql connections (gunicorn -k gevent)."""

from __future__ import annotations

import queue
import random
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

import bottle
import pymysql

from benchmarks.tfb.peers.common import (
    ADDITIONAL,
    FORTUNE_SQL,
    POOL_SIZE,
    WORLD_SQL,
    clamp,
    db_params,
    update_params,
    update_sql,
)

app = application = bottle.Bottle()
bottle.TEMPLATE_PATH.insert(0, str(Path(__file__).parent / "templates"))
_idle: queue.LifoQueue[Any] = queue.LifoQueue()
_slots = queue.Queue(POOL_SIZE)  # type: ignore[var-annotated]


@contextmanager
def connection() -> Iterator[Any]:
    """A pooled pymysql connection: at most POOL_SIZE open; a failed one is closed."""
    _slots.put(None)  # blocks (cooperatively under gevent) while POOL_SIZE are out
    try:
        try:
            conn = _idle.get_nowait()
        except queue.Empty:
            conn = pymysql.connect(**db_params())
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        _idle.put(conn)
    finally:
        _slots.get_nowait()


@app.get("/json")
def json() -> Any:
    return {"message": "Hello, World!"}


@app.get("/plaintext")
def plaintext() -> Any:
    bottle.response.content_type = "text/plain"
    return b"Hello, World!"


@app.get("/db")
def db() -> Any:
    with connection() as conn, conn.cursor() as cur:
        cur.execute(WORLD_SQL, (random.randint(1, 10000),))
        wid, number = cur.fetchone()
    return {"id": wid, "randomNumber": number}


@app.get("/queries")
def queries() -> Any:
    n = clamp(bottle.request.query.get("queries"))
    worlds = []
    with connection() as conn, conn.cursor() as cur:
        for _ in range(n):
            cur.execute(WORLD_SQL, (random.randint(1, 10000),))
            wid, number = cur.fetchone()
            worlds.append({"id": wid, "randomNumber": number})
    bottle.response.content_type = "application/json"
    return bottle.json_dumps(worlds)


@app.get("/fortunes")
def fortunes() -> Any:
    with connection() as conn, conn.cursor() as cur:
        cur.execute(FORTUNE_SQL)
        rows = [{"id": i, "message": m} for i, m in cur.fetchall()]
    rows.append({"id": 0, "message": ADDITIONAL})
    rows.sort(key=itemgetter("message"))
    return bottle.template("fortunes", fortunes=rows)


@app.get("/updates")
def updates() -> Any:
    n = clamp(bottle.request.query.get("queries"))
    ids = sorted(random.sample(range(1, 10001), n))
    worlds = []
    with connection() as conn, conn.cursor() as cur:
        for wid in ids:
            cur.execute(WORLD_SQL, (wid,))
            row = cur.fetchone()
            worlds.append({"id": row[0], "randomNumber": random.randint(1, 10000)})
        cur.execute(update_sql(n), update_params(worlds))
    bottle.response.content_type = "application/json"
    return bottle.json_dumps(worlds)
