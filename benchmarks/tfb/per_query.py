"""Client CPU per query of TFB's 20-query request: webmini's statement path against a bare cursor.

In-process (no HTTP server), on a private MariaDB loaded from schema.sql:
16 greenlets each run requests of 20 primary-key SELECTs through a pool of
10, and the process's CPU time (``time.process_time``: Python, pymysql and
the kernel's socket work) is divided by the number of queries. Variants:

* webmini ``conn.query_one()`` as shipped: ``read_timeout`` 30 s enforced by
  the pool's statement watchdog (webmini/stores/watchdog.py);
* the same with pymysql's own socket timeouts instead (webmini before the
  watchdog: under gevent, a timer armed and cancelled for every socket wait);
* the same with no time limit at all;
* a bare pymysql cursor reused for the 20 queries, rows as tuples, through
  Bottle's 20-line pool (benchmarks/tfb/peers/bottle_app.py): what the
  fastest peer of the TFB run does.

Best of 7 interleaved rounds::

    .venv/bin/python benchmarks/tfb/per_query.py
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.tfb.db_setup import load_into  # noqa: E402
from localservices import start_mariadb  # noqa: E402
from webmini.stores.mysql import Database  # noqa: E402

SQL = "SELECT id, randomNumber FROM World WHERE id = %s"
GREENLETS, QUERIES, REQUESTS, ROUNDS = 16, 20, 400, 7


def webmini_request(db: Database) -> list[Any]:
    """TFB's /queries?queries=20 as benchmarks/tfb/webmini_app.py runs it."""
    with db.connection() as conn:
        return [conn.query_one(SQL, (random.randint(1, 10000),)) for _ in range(QUERIES)]


def bare_request(_: Any) -> list[Any]:
    """The same through Bottle's pool and one bare pymysql cursor."""
    from benchmarks.tfb.peers import bottle_app

    out = []
    with bottle_app.connection() as conn, conn.cursor() as cur:
        for _ in range(QUERIES):
            cur.execute(SQL, (random.randint(1, 10000),))
            out.append(cur.fetchone())
    return out


def measure(request: Callable[[Any], Any], target: Any) -> float:
    """Client CPU µs per query over REQUESTS requests from GREENLETS greenlets."""
    def worker() -> None:
        for _ in range(REQUESTS // GREENLETS):
            request(target)

    started = time.process_time()
    gevent.joinall([gevent.spawn(worker) for _ in range(GREENLETS)], raise_error=True)
    return (time.process_time() - started) / (REQUESTS * QUERIES) * 1e6


def main() -> None:
    """Start MariaDB, load the TFB schema, print µs per query for each variant."""
    server = start_mariadb()
    try:
        url = load_into(server)
        os.environ["TFB_DATABASE_URL"] = url  # read by the Bottle peer's pool
        variants: dict[str, tuple[Callable[[Any], Any], Any]] = {
            "webmini query_one (watchdog, read_timeout 30 s)": (
                webmini_request, Database.from_url(url)),
            "webmini query_one (pymysql socket timeouts 30 s)": (
                webmini_request, Database.from_url(
                    url + "?read_timeout=0&write_timeout=0",
                    connect_args={"read_timeout": 30.0, "write_timeout": 30.0})),
            "webmini query_one (no time limit)": (
                webmini_request, Database.from_url(url + "?read_timeout=0&write_timeout=0")),
            "bare pymysql cursor, Bottle's pool": (bare_request, None),
        }
        for request, target in variants.values():
            measure(request, target)  # warm: pools filled, code paths hot
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(ROUNDS):
            for name, (request, target) in variants.items():
                best[name] = min(best[name], measure(request, target))
        print(f"{GREENLETS} greenlets, pools of 10, {QUERIES} queries per request, "
              f"best of {ROUNDS} rounds; client CPU per query:")
        for name, us in best.items():
            print(f"  {name:50s} {us:5.1f} µs")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
