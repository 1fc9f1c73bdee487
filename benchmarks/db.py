"""Benchmark webmini.stores.mysql: pymysql vs mysqlclient under gevent, and pool throughput vs its limit.

Starts a private MariaDB (the same way the tests do) and measures, in one run:

1. 200 greenlets x ``SELECT SLEEP(0.05)`` through a pool of 20 with pymysql
   (cooperative) and with mysqlclient (a C driver that blocks the gevent hub),
   plus the longest stall a 5 ms ticker greenlet saw meanwhile;
2. the pool's throughput on ``SLEEP(0.05)`` against the limit pool_size / 0.05 s;
3. a small indexed SELECT (primary-key lookup) at 200 greenlets, pymysql with
   pre-ping on every checkout, after 1 s idle, or never, and mysqlclient.

Run: .venv/bin/python benchmarks/db.py
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

# deploy/ holds the private MariaDB runner the tests use too.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from localservices import MariaDBServer, start_mariadb  # noqa: E402
from webmini.stores.mysql import Database  # noqa: E402

SLEEP = 0.05


class Ticker:
    """A greenlet that wakes every 5 ms and records the longest delay it suffered."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.worst = 0.0
        self._g = gevent.spawn(self._run)

    def _run(self) -> None:
        last = time.perf_counter()
        while True:
            gevent.sleep(self.period)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - self.period)
            last = now

    def stop(self) -> float:
        """Stop ticking and return the worst stall in seconds."""
        self._g.kill()
        return self.worst


def run(db: Database, greenlets: int, per_greenlet: int, sql: str,
        params: Callable[[int], Any] | None = None) -> tuple[float, float]:
    """Run ``greenlets`` x ``per_greenlet`` queries; return (seconds, worst hub stall)."""

    def work(n: int) -> None:
        for k in range(per_greenlet):
            db.query(sql, params(n * per_greenlet + k) if params else None)

    ticker = Ticker()
    t0 = time.perf_counter()
    gevent.joinall([gevent.spawn(work, n) for n in range(greenlets)], raise_error=True)
    elapsed = time.perf_counter() - t0
    return elapsed, ticker.stop()


def make(server: MariaDBServer, driver: Any = None, **kw: Any) -> Database:
    """A Database on the benchmark server, warmed up to its pool size."""
    db = Database(**server.params(), driver=driver, acquire_timeout=120, read_timeout=120, **kw)
    gevent.joinall([gevent.spawn(db.query, "SELECT 1") for _ in range(db.pool_size)])
    return db


def main() -> None:
    """Run every scenario and print the figures."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        import MySQLdb
    except ImportError:
        sys.exit("mysqlclient is needed: pip install mysqlclient")
    server = start_mariadb()
    try:
        print(f"MariaDB at {server.host}:{server.port}; cores: {os.cpu_count()}")

        print("\n1. 200 greenlets x SELECT SLEEP(0.05), pool_size=20 (ideal 10 rounds = 0.50 s)")
        results = {}
        for name, driver in (("pymysql", None), ("mysqlclient", MySQLdb)):
            db = make(server, driver, pool_size=20)
            elapsed, stall = run(db, 200, 1, f"SELECT SLEEP({SLEEP})")
            db.close()
            results[name] = elapsed
            print(f"   {name:12s} {elapsed:6.2f} s  {200 / elapsed:7.1f} q/s  "
                  f"worst hub stall {stall * 1000:7.1f} ms")
        print(f"   mysqlclient / pymysql time ratio: "
              f"{results['mysqlclient'] / results['pymysql']:.1f}x "
              f"(serialised would be {200 * SLEEP / 0.5:.0f}x)")

        print("\n2. pymysql pool throughput vs limit pool_size / 0.05 s "
              "(400 greenlets x 2 queries)")
        for size in (5, 10, 20, 50):
            db = make(server, pool_size=size)
            elapsed, _ = run(db, 400, 2, f"SELECT SLEEP({SLEEP})")
            db.close()
            limit = size / SLEEP
            qps = 800 / elapsed
            print(f"   pool_size={size:3d}  {qps:7.1f} q/s  limit {limit:6.0f} q/s  "
                  f"ratio {qps / limit:.2f}")

        print("\n3. indexed point SELECT on 10k rows, 200 greenlets x 25 queries, pool_size=10, "
              "best of 3")
        setup = make(server, pool_size=1)
        setup.execute("CREATE TABLE IF NOT EXISTS kv (id INT PRIMARY KEY, v VARCHAR(64))")
        setup.executemany("INSERT IGNORE INTO kv VALUES (%s, %s)",
                          [(i, f"value-{i}") for i in range(10000)])
        setup.close()
        base = None
        for name, driver, ping in (("pymysql pre_ping=True", None, True),
                                   ("pymysql pre_ping=1.0", None, 1.0),
                                   ("pymysql pre_ping=False", None, False),
                                   ("mysqlclient pre_ping=False", MySQLdb, False)):
            db = make(server, driver, pool_size=10, pre_ping=ping)
            elapsed, stall = min(  # best of 3: the machine is shared and noisy
                run(db, 200, 25, "SELECT v FROM kv WHERE id = %s", lambda i: (i * 7919 % 10000,))
                for _ in range(3)
            )
            db.close()
            qps = 5000 / elapsed
            base = base or qps
            print(f"   {name:27s} {qps:8.0f} q/s ({qps / base:.2f}x)  "
                  f"worst hub stall {stall * 1000:6.1f} ms")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
