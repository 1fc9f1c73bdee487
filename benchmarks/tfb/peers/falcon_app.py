"""The six TFB test types in Falcon, SQLAlchemy's pool of 10 over pymysql, Jinja2 (gunicorn -k gevent)."""

from __future__ import annotations

import random
from operator import itemgetter
from pathlib import Path

import falcon
import jinja2
import sqlalchemy
from sqlalchemy import text

from benchmarks.tfb.peers.common import (
    ADDITIONAL,
    POOL_SIZE,
    clamp,
    sqlalchemy_url,
    update_params,
    update_sql,
)

engine = sqlalchemy.create_engine(sqlalchemy_url(), pool_size=POOL_SIZE, max_overflow=0)
WORLD = text("SELECT id, randomNumber FROM World WHERE id = :id")
FORTUNES = text("SELECT id, message FROM Fortune")
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True
)
fortune_template = templates.get_template("fortunes.html")


class Json:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"message": "Hello, World!"}


class Plaintext:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.data = b"Hello, World!"


class Db:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with engine.connect() as conn:
            row = conn.execute(WORLD, {"id": random.randint(1, 10000)}).one()
        resp.media = {"id": row.id, "randomNumber": row.randomNumber}


class Queries:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        n = clamp(req.get_param("queries"))
        with engine.connect() as conn:
            rows = [conn.execute(WORLD, {"id": random.randint(1, 10000)}).one() for _ in range(n)]
        resp.media = [{"id": r.id, "randomNumber": r.randomNumber} for r in rows]


class Fortunes:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(FORTUNES)]
        rows.append({"id": 0, "message": ADDITIONAL})
        rows.sort(key=itemgetter("message"))
        resp.content_type = "text/html; charset=utf-8"
        resp.text = fortune_template.render(fortunes=rows)


class Updates:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        n = clamp(req.get_param("queries"))
        ids = sorted(random.sample(range(1, 10001), n))
        with engine.begin() as conn:
            worlds = []
            for wid in ids:
                row = conn.execute(WORLD, {"id": wid}).one()
                worlds.append({"id": row.id, "randomNumber": random.randint(1, 10000)})
            conn.exec_driver_sql(update_sql(n), tuple(update_params(worlds)))
        resp.media = worlds


app = application = falcon.App()
app.add_route("/json", Json())
app.add_route("/plaintext", Plaintext())
app.add_route("/db", Db())
app.add_route("/queries", Queries())
app.add_route("/fortunes", Fortunes())
app.add_route("/updates", Updates())
