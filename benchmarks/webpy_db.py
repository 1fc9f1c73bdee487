"""Benchmark ``web.database``: webmini against web.py 0.76, and against webmini's pool used directly.

In one run (gevent's monkey patching on, as in production):

1. query building: the same mix of ``select`` / ``where`` / ``insert`` /
   ``update`` / ``delete`` / ``query`` calls with ``_test=True``, each
   followed by what execution needs (``query(paramstyle)`` and ``values()``),
   on webmini and on web.py 0.76, in-process;
2. result iteration: ``select`` of 100 rows from the same SQLite file,
   iterating every row and reading a column, webmini and web.py 0.76; and a
   one-row select by id (dominated by the call itself);
3. a DB-bound endpoint on MariaDB (a private server, like the tests): a
   webmini app whose handler reads one row through ``web.database(dbn="mysql")``
   against the same handler using ``webmini.stores.mysql.Database`` directly,
   50 greenlets calling the WSGI app.

4. cooperation: 50 concurrent ``pg_sleep(0.2)`` over a pool of 10 on a
   private PostgreSQL (ideal 1.0 s), and the MySQL pool's cold start (10
   connects, 50 queries) with pymysql's own per-connect TLS set-up against
   webmini's TLS modes; each with the longest delay a 10 ms ticker greenlet
   saw.

Run: .venv/bin/python benchmarks/webpy_db.py [--quick] [--cooperation (part 4 only)]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import web as webpy  # noqa: E402
import web.db as webpy_db  # noqa: E402

import webmini  # noqa: E402
from localservices import start_mariadb  # noqa: E402
from localservices.postgres import start_postgres  # noqa: E402
from webmini.stores.mysql import Database  # noqa: E402
from webmini.testing import build_environ, call_app  # noqa: E402

QUICK = "--quick" in sys.argv


def best_rates(mine: Callable[[], None], ref: Callable[[], None], n: int,
               repeat: int = 7) -> tuple[float, float]:
    """Calls per second of each (best of ``repeat`` rounds of ``n`` calls, interleaved
    so that load from other processes on the machine hits both alike)."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for k, fn in enumerate((mine, ref)):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return n / best[0], n / best[1]


def building_mix(db: Any, style: str) -> Callable[[], None]:
    """One round of typical query building, rendered for the driver."""
    vars = {"uid": 42, "state": "open", "ids": [1, 2, 3]}

    def mix() -> None:
        for q in (
            db.select("todo", where="owner = $uid AND state = $state", vars=vars,
                      order="created DESC", limit=20, offset=40, _test=True),
            db.where("todo", owner=42, state="open", _test=True),
            db.insert("todo", owner=42, title="write the docs", state="open", _test=True),
            db.update("todo", where="id = $uid", vars=vars, state="done", _test=True),
            db.delete("todo", where="id IN $ids", vars=vars, _test=True),
            db.query("SELECT count(*) AS n FROM todo WHERE owner = $uid", vars=vars, _test=True),
        ):
            q.query(style)
            q.values()

    return mix


def bench_building() -> tuple[float, float]:
    path = os.path.join(tempfile.mkdtemp(prefix="webmini-bench-"), "b.db")
    mine = webmini.database(dbn="sqlite", db=path)
    ref = webpy_db.DB(None, {"pooling": False})
    ref.printing = False
    n = 2000 if QUICK else 10000
    return best_rates(building_mix(mine, "qmark"), building_mix(ref, "qmark"), n)


def bench_iteration(path: str) -> dict[str, tuple[float, float]]:
    mine = webmini.database(dbn="sqlite", db=path)
    ref = webpy.database(dbn="sqlite", db=path)
    ref.printing = False  # web.py prints every query while web.config.debug is on

    def rows100(db: Any) -> Callable[[], None]:
        def run() -> None:
            total = 0
            for row in db.select("item", where="id > $lo", vars={"lo": 100}, order="id",
                                 limit=100):
                total += row.price
        return run

    def one(db: Any) -> Callable[[], None]:
        def run() -> None:
            db.select("item", where="id = $id", vars={"id": 77}).first()
        return run

    def iterate_only(n: int) -> tuple[float, float]:
        # Rows per second of iteration alone: the statement runs before the clock
        # starts (web.py fetches rows from the cursor while iterating; webmini
        # has them from the statement's own call).
        best = [float("inf"), float("inf")]
        for _ in range(7):
            for k, db in enumerate((mine, ref)):
                results = [db.select("item", where="id > $lo", vars={"lo": 100}, order="id",
                                     limit=100) for _ in range(n)]
                t0 = time.perf_counter()
                for rs in results:
                    for row in rs:
                        row.price  # noqa: B018
                best[k] = min(best[k], time.perf_counter() - t0)
        return n * 100 / best[0], n * 100 / best[1]

    n = 300 if QUICK else 2000
    out = {
        "iterate 100 rows (rows/s)": iterate_only(n // 3),
        "select 100 rows + iterate": best_rates(rows100(mine), rows100(ref), n),
        "select 1 row by id": best_rates(one(mine), one(ref), n * 2),
    }
    mine.close()
    return out


def make_sqlite() -> str:
    path = os.path.join(tempfile.mkdtemp(prefix="webmini-bench-"), "items.db")
    db = webmini.database(dbn="sqlite", db=path)
    db.query("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price INT)")
    with db.transaction():
        db.multiple_insert("item", [{"name": f"item {i}", "price": i % 97} for i in range(5000)])
    db.close()
    return path


def bench_endpoint() -> tuple[float, float, float, float, float, float, float]:
    server = start_mariadb()
    try:
        pool = Database(**server.params(), pool_size=10, pre_ping=1.0)
        pool.execute("CREATE TABLE item (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50),"
                     " price INT) ENGINE=InnoDB")
        pool.executemany("INSERT INTO item (name, price) VALUES (%s, %s)",
                         [(f"item {i}", i % 97) for i in range(1000)])
        db = webmini.database(dbn="mysql", pool=pool)

        class ViaWebDB:
            def GET(self, ident: str) -> str:
                row = db.select("item", where="id = $id", vars={"id": int(ident)}).first()
                return json.dumps({"id": row.id, "name": row.name, "price": row.price})

        class ViaPool:
            def GET(self, ident: str) -> str:
                row = pool.query_one("SELECT * FROM item WHERE id = %s", (int(ident),))
                assert row is not None
                return json.dumps({"id": row.id, "name": row.name, "price": row.price})

        app = webmini.application(("/webdb/(\\d+)", "ViaWebDB", "/pool/(\\d+)", "ViaPool"),
                                  {"ViaWebDB": ViaWebDB, "ViaPool": ViaPool})
        wsgi = app.wsgifunc()
        per = 50 if QUICK else 100

        def load(prefix: str) -> float:
            def client(n: int) -> None:
                for k in range(per):
                    res = call_app(wsgi, build_environ(f"{prefix}{(n * per + k) % 1000 + 1}"))
                    assert res.status.startswith("200"), res.status

            t0, c0 = time.perf_counter(), time.process_time()
            gevent.joinall([gevent.spawn(client, n) for n in range(50)], raise_error=True)
            cpu[prefix].append((time.process_time() - c0) / (50 * per))
            return 50 * per / (time.perf_counter() - t0)

        cpu: dict[str, list[float]] = {"/webdb/": [], "/pool/": []}
        load("/webdb/"), load("/pool/")  # warm both
        # Short rounds, alternating, many times: the machine's load drifts within
        # seconds, so each web.database round is compared with the pool round
        # next to it, and the median of those ratios is reported.
        ratios, webdb_rates, pool_rates = [], [], []
        for _ in range(6 if QUICK else 12):
            webdb_rates.append(load("/webdb/"))
            pool_rates.append(load("/pool/"))
            ratios.append(webdb_rates[-1] / pool_rates[-1])
        pool.close()
        ratios.sort()
        return (statistics.median(webdb_rates), statistics.median(pool_rates),
                statistics.median(ratios), ratios[0], ratios[-1],
                min(cpu["/webdb/"]), min(cpu["/pool/"]))
    finally:
        server.cleanup()


class Ticker:
    """A greenlet waking every 10 ms; ``worst`` is its longest delay past a tick (wall clock).

    ``worst_cpu`` counts a delay only as far as this thread was on the CPU
    meanwhile: the hub kept busy, not the process descheduled by a loaded machine.
    """

    def __init__(self) -> None:
        self.worst = self.worst_cpu = 0.0
        self._g = gevent.spawn(self._run)
        gevent.sleep(0.02)

    def _run(self) -> None:
        while True:
            t0, c0 = time.perf_counter(), time.thread_time()
            gevent.sleep(0.01)
            late = time.perf_counter() - t0 - 0.01
            self.worst = max(self.worst, late)
            self.worst_cpu = max(self.worst_cpu, min(late, time.thread_time() - c0))

    def stop(self) -> tuple[float, float]:
        """Stop; the worst delays (wall, on-CPU) in seconds."""
        self._g.kill()
        return self.worst, self.worst_cpu


def bench_cooperation() -> list[tuple[str, float, tuple[float, float]]]:
    rows = []
    pg_server = start_postgres()
    try:
        pg = webmini.database(**pg_server.params(), pool_size=10)
        for label in ("postgres: 50 x pg_sleep(0.2), pool of 10, cold",
                      "postgres: 50 x pg_sleep(0.2), pool of 10, warm"):
            ticker = Ticker()
            t0 = time.perf_counter()
            gevent.joinall([gevent.spawn(lambda: pg.query("SELECT pg_sleep(0.2)").list())
                            for _ in range(50)], raise_error=True)
            rows.append((label, time.perf_counter() - t0, ticker.stop()))
        pg.close()
    finally:
        pg_server.cleanup()
    my_server = start_mariadb()
    try:
        variants: list[tuple[str, dict[str, Any]]] = [
            ("pymysql's default TLS set-up (an SSLContext per connect)",
             {"connect_args": {"ssl_disabled": False}}),
            ("ssl=preferred (one SSLContext per pool)", {"ssl": "preferred"}),
            ("ssl=disabled (the loopback default)", {}),
        ]
        for label, kw in variants:
            pool = Database(**my_server.params(), pool_size=10, **kw)
            ticker = Ticker()
            t0 = time.perf_counter()
            gevent.joinall([gevent.spawn(pool.query, "SELECT SLEEP(0.05)") for _ in range(50)],
                           raise_error=True)
            rows.append((f"mysql cold pool of 10, 50 x SLEEP(0.05): {label}",
                         time.perf_counter() - t0, ticker.stop()))
            pool.close()
    finally:
        my_server.cleanup()
    return rows


def main() -> None:
    print(f"web.py {webpy.__version__} vs webmini, gevent patched; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if "--cooperation" in sys.argv:
        print("\n| cooperation | time | longest ticker delay: wall / on-CPU |\n|---|---|---|")
        for label, elapsed, (wall, cpu) in bench_cooperation():
            print(f"| {label} | {elapsed:.2f} s | {wall * 1000:.1f} ms / {cpu * 1000:.1f} ms |")
        return
    mine, ref = bench_building()
    print("\n| query building (6 statements, _test=True + query() + values()) | webmini | "
          "web.py 0.76 | ratio |\n|---|---|---|---|")
    print(f"| rounds/s | {mine:,.0f} | {ref:,.0f} | {mine / ref:.2f}x |")
    path = make_sqlite()
    print("\n| SQLite file, same process | webmini calls/s | web.py 0.76 calls/s | ratio |"
          "\n|---|---|---|---|")
    for name, (m, r) in bench_iteration(path).items():
        print(f"| {name} | {m:,.0f} | {r:,.0f} | {m / r:.2f}x |")
    webdb, direct, ratio, low, high, cpu_webdb, cpu_direct = bench_endpoint()
    print("\n| DB-bound endpoint (MariaDB, 50 greenlets, WSGI in-process) | requests/s (median) |"
          " CPU of this process per request (best) |\n|---|---|---|")
    print(f"| web.database(dbn='mysql') | {webdb:,.0f} | {cpu_webdb * 1e6:.0f} us |")
    print(f"| webmini.stores.mysql.Database directly | {direct:,.0f} | {cpu_direct * 1e6:.0f} us |")
    print(f"| ratio of neighbouring rounds: median (range) | {ratio:.2f} ({low:.2f}-{high:.2f}) |")
    print("\n| cooperation | time | longest ticker delay: wall / on-CPU |\n|---|---|---|")
    for label, elapsed, (wall, cpu) in bench_cooperation():
        print(f"| {label} | {elapsed:.2f} s | {wall * 1000:.1f} ms / {cpu * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
