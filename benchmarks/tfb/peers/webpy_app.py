"""The six TFB test types in web.py 0.76: web.database over pymysql with DBUtils' pool of 10, Templetor (uWSGI gevent)."""

from __future__ import annotations

import json
import random
import time
from email.utils import formatdate
from operator import attrgetter
from pathlib import Path
from typing import Any

import web

web.config.debug = False  # production setting: no reloader, no debug pages

from benchmarks.tfb.peers.common import (  # noqa: E402
    ADDITIONAL,
    POOL_SIZE,
    clamp,
    db_params,
    update_params,
    update_sql,
)

_p = db_params()
db = web.database(dbn="mysql", driver="pymysql", host=_p["host"], port=_p["port"], user=_p["user"],
                  pw=_p["password"], db=_p["db"], charset="utf8mb4",
                  maxconnections=POOL_SIZE, blocking=True)
render = web.template.render(str(Path(__file__).resolve().parent.parent / "templates"))
_date = ["", 0]


def server_headers() -> None:
    now = int(time.time())
    if now != _date[1]:
        _date[0], _date[1] = formatdate(now, usegmt=True), now
    web.header("Server", "web.py")
    web.header("Date", _date[0])


def world(wid: int) -> dict[str, int]:
    row = db.query("SELECT id, randomNumber FROM World WHERE id = $id", vars={"id": wid})[0]
    return {"id": row.id, "randomNumber": row.randomNumber}


def as_json(obj: Any) -> str:
    web.header("Content-Type", "application/json")
    return json.dumps(obj)


class Json:
    def GET(self) -> str:
        server_headers()
        return as_json({"message": "Hello, World!"})


class Plaintext:
    def GET(self) -> str:
        server_headers()
        web.header("Content-Type", "text/plain")
        return "Hello, World!"


class Db:
    def GET(self) -> str:
        server_headers()
        return as_json(world(random.randint(1, 10000)))


class Queries:
    def GET(self) -> str:
        n = clamp(web.input(queries="1").queries)
        server_headers()
        return as_json([world(random.randint(1, 10000)) for _ in range(n)])


class Fortunes:
    def GET(self) -> str:
        server_headers()
        rows = list(db.query("SELECT id, message FROM Fortune"))
        rows.append(web.storage(id=0, message=ADDITIONAL))
        rows.sort(key=attrgetter("message"))
        web.header("Content-Type", "text/html; charset=utf-8")
        return str(render.fortunes(rows))


class Updates:
    def GET(self) -> str:
        n = clamp(web.input(queries="1").queries)
        server_headers()
        ids = sorted(random.sample(range(1, 10001), n))
        with db.transaction():
            worlds = [{"id": world(wid)["id"], "randomNumber": random.randint(1, 10000)} for wid in ids]
            params = update_params(worlds)
            sql = update_sql(n, "$p%d")
            for i in range(len(params)):
                sql = sql.replace("$p%d", f"$p{i}", 1)
            db.query(sql, vars={f"p{i}": v for i, v in enumerate(params)})
        return as_json(worlds)


urls = (
    "/json", "Json",
    "/plaintext", "Plaintext",
    "/db", "Db",
    "/queries", "Queries",
    "/fortunes", "Fortunes",
    "/updates", "Updates",
)
app = web.application(urls, globals())
application = app.wsgifunc()
