"""Benchmark webmini.stores.cache's per-call cost against the same file at another revision.

Starts one private memcached (the same way the tests do) and times, in
interleaved rounds (each side first in every other round) keeping each
side's best, ``get`` of a stored key, ``get`` of a missing key and ``set``,
one call after another (the client's own Python cost plus a loopback round
trip): this tree's ``Cache`` beside the
``webmini/stores/cache.py`` of ``--against`` (default ``HEAD~1``), loaded
from git as a module of its own. Prints microseconds per call and the ratio.

Run: .venv/bin/python benchmarks/cache_ops.py [--against REV] [--calls 20000] [--rounds 5]
(``--against HEAD`` compares the tree with itself: the run's noise.)
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from localservices import MemcachedCluster  # noqa: E402
from webmini.stores.cache import Cache  # noqa: E402


def cache_class_at(revision: str, workdir: Path) -> Any:
    """``Cache`` from ``webmini/stores/cache.py`` as it is at ``revision``."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:webmini/stores/cache.py"],
                            check=True, capture_output=True, text=True).stdout
    path = workdir / "cache_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("cache_at_revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Cache


def per_call_us(call: Any, calls: int) -> float:
    """Microseconds per ``call()``, over ``calls`` calls."""
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    """Time both clients, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD~1")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webmini-cache-bench-") as tmp:
        cluster = MemcachedCluster(Path(tmp), size=1)
        cluster.start()
        try:
            clients = {"this tree": Cache(cluster.addresses),
                       args.against: cache_class_at(args.against, Path(tmp))(cluster.addresses)}
            for client in clients.values():
                client.set("bench:hit", "x" * 100)
            ops = {"get (hit)": lambda c: c.get("bench:hit"),
                   "get (miss)": lambda c: c.get("bench:miss"),
                   "set": lambda c: c.set("bench:set", "y" * 100)}
            best = {(name, op): float("inf") for name in clients for op in ops}
            for round_ in range(args.rounds):
                order = list(clients.items())
                if round_ % 2:
                    order.reverse()  # neither side always runs first
                for op, run in ops.items():
                    for name, client in order:
                        us = per_call_us(lambda client=client, run=run: run(client), args.calls)
                        best[name, op] = min(best[name, op], us)
            names = list(clients)
            print(f"| call | {names[0]} (us) | {names[1]} (us) | ratio |")
            print("|---|---|---|---|")
            for op in ops:
                mine, theirs = best[names[0], op], best[names[1], op]
                print(f"| {op} | {mine:.1f} | {theirs:.1f} | {theirs / mine:.2f} |")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
