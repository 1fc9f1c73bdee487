"""A worker's memory across MariaDB restarts when its pool speaks TLS.

In-process, on a private MariaDB with TLS (localservices/,
``start_mariadb(tls=True)``): a pool of 10 serves 200 queries twice, then
the server restarts three times with the same load after each (every
pooled connection is lost and reopened: 40 TLS handshakes in all). Prints
the process's resident memory before and after, for the pool's ``verify``
and ``required`` modes and for pymysql's own TLS set-up (an ``ssl`` dict:
pymysql builds an SSLContext per connect)::

    .venv/bin/python benchmarks/db_tls_rss.py
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localservices import start_mariadb  # noqa: E402
from webmini.stores.mysql import Database  # noqa: E402

RESTARTS = 3


def rss_mb() -> float:
    """This process's resident memory, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load(db: Database) -> int:
    """200 short queries from 200 greenlets; how many failed (the server just restarted)."""
    def one() -> bool:
        try:
            db.query("SELECT SLEEP(0.01)")
            return True
        except Exception:
            return False

    jobs = [gevent.spawn(one) for _ in range(200)]
    gevent.joinall(jobs)
    return sum(not job.value for job in jobs)


def main() -> None:
    """Measure each TLS set-up across RESTARTS server restarts."""
    server = start_mariadb(tls=True)
    try:
        assert server.tls is not None
        setups: dict[str, dict[str, Any]] = {
            "pool, ssl=verify": {"ssl": "verify", "ssl_ca": server.tls.ca},
            "pool, ssl=required": {"ssl": "required"},
            "pymysql's own (ssl dict)": {"ssl": "disabled", "connect_args": {
                "ssl": {"ca": server.tls.ca}, "ssl_disabled": False}},
        }
        for name, options in setups.items():
            db = Database(**server.params(), pool_size=10, **options)
            load(db)
            load(db)
            before = rss_mb()
            failed = 0
            for _ in range(RESTARTS):
                server.restart()
                failed += load(db) + load(db)
            after = rss_mb()
            print(f"{name:28s} RSS {before:5.1f} -> {after:5.1f} MB after {RESTARTS} restarts "
                  f"({db.stats().connects} connects, {failed} queries failed)")
            db.close()
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
