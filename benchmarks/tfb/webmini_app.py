"""TechEmpower's six test types on webmini, written as a webmini user would.

``/json``, ``/plaintext``, ``/db``, ``/queries?queries=N``, ``/fortunes``,
``/updates?queries=N`` over MariaDB's ``hello_world`` database
(benchmarks/tfb/schema.sql), through ``webmini.stores.mysql.Database`` (the
URL, with its pool options, comes from ``TFB_DATABASE_URL``). Served by the
project's uwsgi.ini::

    TFB_DATABASE_URL=mysql://user:pw@127.0.0.1:3306/hello_world \\
    WEBMINI_MODULE=benchmarks.tfb.webmini_app:application uwsgi --ini uwsgi.ini

uWSGI's http-socket adds no ``Server`` or ``Date`` header (nginx does, in
front), and TFB requires both: every handler adds them.
"""

from __future__ import annotations

import os
import random
import time
from email.utils import formatdate
from operator import itemgetter
from pathlib import Path
from typing import Any

import webmini as web
from webmini.stores.mysql import Database

DEFAULT_URL = "mysql://benchmarkdbuser:benchmarkdbpass@127.0.0.1:3306/hello_world"
db = Database.from_url(os.environ.get("TFB_DATABASE_URL", DEFAULT_URL))

TEMPLATES = Path(__file__).resolve().parent / "templates"
ADDITIONAL = "Additional fortune added at request time."
_by_message = itemgetter("message")  # rows are dicts (Storage): the C getter
_randint = random.randint

render = web.template.render(str(TEMPLATES))  # web.py's Templetor: $def with (fortunes)


_date = ["", 0]


def server_headers() -> None:
    """Add ``Server`` and ``Date`` (formatted once a second)."""
    now = int(time.time())
    if now != _date[1]:
        _date[0], _date[1] = formatdate(now, usegmt=True), now
    web.header("Server", "webmini")
    web.header("Date", _date[0])


def query_count() -> int:
    """The ``queries`` parameter clamped to 1..500 (missing or not a number: 1)."""
    raw = web.input(queries="1").queries
    try:
        n = int(raw)
    except (TypeError, ValueError):
        return 1
    return 1 if n < 1 else 500 if n > 500 else n


class Json:
    """TFB test 1: JSON serialization."""

    def GET(self) -> dict[str, str]:
        server_headers()
        return {"message": "Hello, World!"}


class Plaintext:
    """TFB test 6: plaintext."""

    def GET(self) -> bytes:
        server_headers()
        web.header("Content-Type", "text/plain")
        return b"Hello, World!"


class Db:
    """TFB test 2: one random World row."""

    def GET(self) -> Any:
        server_headers()
        return db.query_one("SELECT id, randomNumber FROM World WHERE id = %s",
                            (_randint(1, 10000),))


class Queries:
    """TFB test 3: N random World rows, one query each."""

    def GET(self) -> list[Any]:
        n = query_count()
        server_headers()
        with db.connection() as conn:
            return [conn.query_one("SELECT id, randomNumber FROM World WHERE id = %s",
                                   (_randint(1, 10000),)) for _ in range(n)]


class Fortunes:
    """TFB test 4: every fortune plus one, sorted, escaped, through a template."""

    def GET(self) -> str:
        server_headers()
        fortunes = db.query("SELECT id, message FROM Fortune")
        fortunes.append(web.storage(id=0, message=ADDITIONAL))
        fortunes.sort(key=_by_message)
        return render.fortunes(fortunes)


class Updates:
    """TFB test 5: N random World rows read one by one, then updated in one statement."""

    def GET(self) -> list[dict[str, int]]:
        n = query_count()
        server_headers()
        # Distinct ids, sorted: one row is never updated twice in a statement, and
        # concurrent statements lock rows in the same order (no deadlocks).
        ids = sorted(random.sample(range(1, 10001), n))
        worlds = []
        with db.connection() as conn:
            for wid in ids:
                row = conn.query_one("SELECT id, randomNumber FROM World WHERE id = %s", (wid,))
                worlds.append({"id": row.id, "randomNumber": _randint(1, 10000)})
            params: list[int] = []
            for w in worlds:
                params += (w["id"], w["randomNumber"])
            params += ids
            conn.execute(update_sql(n), params)
        return worlds


_UPDATE_SQL: dict[int, str] = {}


def update_sql(n: int) -> str:
    """``UPDATE World SET randomNumber = CASE id WHEN .. THEN .. END WHERE id IN (..)``."""
    sql = _UPDATE_SQL.get(n)
    if sql is None:
        sql = _UPDATE_SQL[n] = (
            "UPDATE World SET randomNumber = CASE id " + "WHEN %s THEN %s " * n
            + "END WHERE id IN (" + ",".join(["%s"] * n) + ")"
        )
    return sql


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
