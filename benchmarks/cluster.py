"""Benchmark webmini behind nginx with 1, 2 and 3 uWSGI nodes (wrk, loopback only).

Starts a private MariaDB and three memcached servers (the same way the tests
do), then for each node count runs the shipped deploy/ configuration
(localservices/cluster.py: nginx + N nodes x 2 gevent workers) and drives it
with wrk through nginx:

- ``/node``: the app alone (routing, JSON, the metrics processor);
- ``/work``: one memcached get per request (a MySQL query on a miss).

Every run is bounded (``--duration`` seconds per wrk run, default 8).
All processes share this machine's cores with wrk and nginx, so adding
nodes adds processes, not CPU: see the report printed at the end.

Run: .venv/bin/python benchmarks/cluster.py [--duration 8] [--connections 64]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# deploy/ holds the local cluster and the private MariaDB/memcached runners.
sys.path[:0] = [str(HERE.parent)]

from localservices import MemcachedCluster, start_mariadb  # noqa: E402
from localservices.cluster import LocalCluster, http_get  # noqa: E402

WRK = shutil.which("wrk") or "/usr/bin/wrk"


def wrk(url: str, duration: int, connections: int, threads: int = 2) -> dict[str, str]:
    """Run wrk once; return requests/s, latency percentiles and error counts."""
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
           "--timeout", "5s", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    result = {"cmd": " ".join(cmd[1:-1]) + " <url>"}
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = match.group(1) if match else "?"
    for pct in ("50%", "99%"):
        match = re.search(rf"^\s+{pct}\s+(\S+)$", out, re.M)
        result[pct] = match.group(1) if match else "?"
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = match.group(1) if match else "0"
    match = re.search(r"Socket errors: (.*)$", out, re.M)
    result["errors"] = match.group(1) if match else "none"
    return result


def main() -> int:
    """Measure 1, 2 and 3 nodes; print a markdown table."""
    parser = argparse.ArgumentParser(description="webmini cluster benchmark")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--nodes", default="1,2,3")
    args = parser.parse_args()
    duration = max(1, min(args.duration, 60))

    db = start_mariadb()
    memcached = MemcachedCluster(Path(tempfile.mkdtemp(prefix="webmini-bench-mc-")))
    rows = []
    try:
        memcached.start()
        for n in (int(x) for x in args.nodes.split(",")):
            cluster = LocalCluster(n, db_url=db.url + "?pool_size=8", memcached=memcached.addresses,
                                   secret=secrets.token_urlsafe(32))
            with cluster:
                for path in ("/node", "/work"):
                    url = cluster.url + path
                    assert http_get(url)[0] == 200
                    wrk(url, 1, args.connections)  # warm-up: imports, pools, caches
                    r = wrk(url, duration, args.connections)
                    rows.append((n, path, r))
                    print(f"{n} node(s) {path}: {r['rps']} req/s, p50 {r['50%']}, "
                          f"p99 {r['99%']}, non-2xx {r['non2xx']}, errors {r['errors']}",
                          flush=True)
                time.sleep(0.5)
    finally:
        memcached.stop()
        db.cleanup()

    print(f"\nwrk {rows[0][2]['cmd']} (through nginx; {os.cpu_count()} cores shared by all)\n")
    print("| nodes x workers | path | req/s | p50 | p99 | non-2xx |")
    print("|---|---|---|---|---|---|")
    for n, path, r in rows:
        print(f"| {n} x 2 | `{path}` | {r['rps']} | {r['50%']} | {r['99%']} | {r['non2xx']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
