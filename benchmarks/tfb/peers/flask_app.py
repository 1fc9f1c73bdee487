"""The six TFB test types in Flask, SQLAlchemy's pool of 10 over pymysql (gunicorn -k gevent)."""

from __future__ import annotations

import random
from operator import itemgetter
from pathlib import Path
from typing import Any

import sqlalchemy
from flask import Flask, make_response, render_template, request
from sqlalchemy import text

from benchmarks.tfb.peers.common import (
    ADDITIONAL,
    POOL_SIZE,
    clamp,
    sqlalchemy_url,
    update_params,
    update_sql,
)

app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
engine = sqlalchemy.create_engine(sqlalchemy_url(), pool_size=POOL_SIZE, max_overflow=0)
WORLD = text("SELECT id, randomNumber FROM World WHERE id = :id")
FORTUNES = text("SELECT id, message FROM Fortune")


@app.route("/json")
def json() -> Any:
    return {"message": "Hello, World!"}


@app.route("/plaintext")
def plaintext() -> Any:
    response = make_response(b"Hello, World!")
    response.content_type = "text/plain"
    return response


@app.route("/db")
def db() -> Any:
    with engine.connect() as conn:
        row = conn.execute(WORLD, {"id": random.randint(1, 10000)}).one()
    return {"id": row.id, "randomNumber": row.randomNumber}


@app.route("/queries")
def queries() -> Any:
    n = clamp(request.args.get("queries"))
    with engine.connect() as conn:
        rows = [conn.execute(WORLD, {"id": random.randint(1, 10000)}).one() for _ in range(n)]
    return [{"id": r.id, "randomNumber": r.randomNumber} for r in rows]


@app.route("/fortunes")
def fortunes() -> Any:
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(FORTUNES)]
    rows.append({"id": 0, "message": ADDITIONAL})
    rows.sort(key=itemgetter("message"))
    return render_template("fortunes.html", fortunes=rows)


@app.route("/updates")
def updates() -> Any:
    n = clamp(request.args.get("queries"))
    ids = sorted(random.sample(range(1, 10001), n))
    with engine.begin() as conn:
        worlds = []
        for wid in ids:
            row = conn.execute(WORLD, {"id": wid}).one()
            worlds.append({"id": row.id, "randomNumber": random.randint(1, 10000)})
        conn.exec_driver_sql(update_sql(n), tuple(update_params(worlds)))
    return worlds
