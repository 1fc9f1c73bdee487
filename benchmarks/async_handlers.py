"""``async def`` handlers, end to end: real servers on loopback, load from wrk, side by side.

Scenarios (the servers of a scenario run at once and take turns, best of
``--rounds`` kept; see benchmarks/e2e.py for the plumbing shared here):

1. ``slow``: 1,000 connections on ``GET /async`` (``await asyncio.sleep(0.1)``),
   benchmarks/apps/async_app.py under uwsgi.ini (4 workers on 2 cores); the same
   wait written sync (``GET /sync``, ``gevent.sleep``) on the same server; the
   same endpoint on FastAPI/uvicorn (4 workers) and as a Flask ``async def``
   view under ``gunicorn -k gevent`` (4 workers, asgiref). The limit is
   connections / latency = 10,000 req/s. Targets: async >= 0.9 of the limit,
   >= 0.95x sync, ahead of both peers.
2. ``mixed``: half the connections on a sync handler waiting on MariaDB
   through webmini's pool (``SELECT SLEEP(0.05)``), half on an ``async def``
   handler awaiting an aiohttp call to a slow local upstream (examples/hello.py
   ``/slow``, 100 ms, under its own uwsgi.ini): each alone, then both at once
   against the same server. Target: each p99 at once within 1.5x of alone.

Usage::

    .venv/bin/python benchmarks/async_handlers.py            # 3 rounds x 10 s per server
    .venv/bin/python benchmarks/async_handlers.py --duration 5 --rounds 2 --only slow
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy"))

from benchmarks.e2e import (  # noqa: E402
    SLOW_LIMIT,
    VENV_BIN,
    WRK,
    Run,
    Scenario,
    Server,
    _failures,
    machine,
    print_report,
    raise_limits,
    run_scenarios,
    somaxconn,
    uwsgi_ini_server,
    wrk,
)
from localservices import free_port, start_mariadb  # noqa: E402

APP = "benchmarks.apps.async_app:application"
QUIET: dict[str, str] = {}  # webmini as users run it: defaults, access line on
WORKERS = 4  # uwsgi.ini's default on 2 cores (2 per core); the peers get as many


def fastapi_server(workdir: Path) -> Server:
    """FastAPI on uvicorn (uvloop, httptools), 4 workers."""
    port = free_port()
    return Server("FastAPI (uvicorn, 4 workers)", [
        str(VENV_BIN / "uvicorn"), "benchmarks.apps.async_peers:fastapi_app", "--host",
        "127.0.0.1", "--port", str(port), "--workers", str(WORKERS), "--no-access-log",
        "--log-level", "warning", "--backlog", str(min(4096, somaxconn())),
    ], port, workdir=workdir)


def flask_server(workdir: Path) -> Server:
    """A Flask ``async def`` view on gunicorn -k gevent, 4 workers."""
    port = free_port()
    return Server("Flask async view (gunicorn -k gevent, 4 workers)", [
        str(VENV_BIN / "gunicorn"), "-k", "gevent", "-w", str(WORKERS),
        "--worker-connections", "1000", "--backlog", str(min(4096, somaxconn())),
        "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        "benchmarks.apps.async_peers:flask_app",
    ], port, workdir=workdir)


def worker_cpu(server: Server) -> float:
    """CPU seconds (user + system) used so far by the server's worker processes."""
    assert server.proc is not None
    pid = server.proc.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    total = 0
    for child in children:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def interleaved(scenario: str, targets: Sequence[tuple[Server, str, str]], connections: int,
                duration: int, rounds: int) -> list[Run]:
    """``rounds`` turns of wrk over (server, path, label); keep each label's best run."""
    best: dict[str, Run] = {}
    for server, path, _ in targets:  # warm-up: imports, pools, the loop
        wrk(Run(scenario, "warm-up", path, 100), server.port, 2)
    for _ in range(rounds):
        for server, path, label in targets:
            before = worker_cpu(server)
            run = wrk(Run(scenario, label, path, connections), server.port, duration)
            cpu_us = 1e6 * (worker_cpu(server) - before) / max(run.requests, 1)
            run.server_cmd = server.command_line()
            print(f"  {label:<52} {path:<9} c={connections:<5} {run.rps:>9,.0f} req/s  "
                  f"p50 {run.p50_ms:7.1f} ms  p99 {run.p99_ms:7.1f} ms  "
                  f"failures {_failures(run)}  worker CPU {cpu_us:6.1f} us/request", flush=True)
            cpu.setdefault(label, []).append(cpu_us)
            if label not in best or run.rps > best[label].rps:
                best[label] = run
    return [best[label] for _, _, label in targets]


#: label -> worker CPU microseconds per request of each run (the figure a loaded
#: machine distorts least: it counts the servers' own work, not the waiting).
cpu: dict[str, list[float]] = {}


def cpu_median(label: str) -> float:
    """The median worker CPU per request of ``label``'s runs."""
    values = sorted(cpu.get(label, [0.0]))
    return values[len(values) // 2]


def scenario_slow(duration: int, rounds: int, workdir: Path) -> tuple[list[Run], list[str]]:
    """1,000 connections on a 100 ms asyncio wait: webmini async vs sync vs FastAPI vs Flask."""
    mini = uwsgi_ini_server("webmini (uwsgi.ini)", APP, workdir, QUIET)
    servers = [mini, fastapi_server(workdir), flask_server(workdir)]
    started: list[Server] = []
    try:
        for server in servers:
            started.append(server.__enter__())
        runs = interleaved("slow", [
            (mini, "/async", "webmini async def (uwsgi.ini, 4 workers)"),
            (mini, "/sync", "webmini sync, gevent.sleep (uwsgi.ini, 4 workers)"),
            (servers[1], "/async", servers[1].name),
            (servers[2], "/async", servers[2].name),
        ], 1000, duration, rounds)
    finally:
        for server in started:
            server.__exit__()
    a, s, fastapi, flask = runs
    cpu_a, cpu_s = cpu_median(a.server), cpu_median(s.server)

    def ratio(x: Run, y: Run) -> float:
        return x.rps / y.rps if y.rps else float("inf")

    verdict = lambda ok: "ok" if ok else "BELOW TARGET"  # noqa: E731
    return runs, [
        f"slow: webmini async = {a.rps / SLOW_LIMIT:.2f} of the limit {SLOW_LIMIT:,.0f} req/s "
        f"(target >= 0.9: {verdict(a.rps >= 0.9 * SLOW_LIMIT)})",
        f"slow: async / sync = {ratio(a, s):.2f}x (target >= 0.95x: {verdict(ratio(a, s) >= 0.95)})",
        f"slow: worker CPU per request (median): async {cpu_a:.1f} us, sync {cpu_s:.1f} us "
        f"(+{cpu_a - cpu_s:.1f} us), FastAPI {cpu_median(fastapi.server):.1f} us, "
        f"Flask {cpu_median(flask.server):.1f} us",
        f"slow: webmini async / FastAPI = {ratio(a, fastapi):.2f}x "
        f"(target > 1: {verdict(ratio(a, fastapi) > 1)})",
        f"slow: webmini async / Flask async = {ratio(a, flask):.2f}x "
        f"(target > 1: {verdict(ratio(a, flask) > 1)}; Flask failures {_failures(flask)})",
    ]


def _wrk_both(scenario: str, server: Server, paths: Sequence[str], connections: int,
              duration: int) -> list[Run]:
    """wrk on every path at once (one wrk process each)."""
    runs = [Run(scenario, f"webmini {path} (with the other)", path, connections)
            for path in paths]
    threads = [threading.Thread(target=wrk, args=(run, server.port, duration)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for run in runs:
        run.server_cmd = server.command_line()
    return runs


def scenario_mixed(duration: int, rounds: int, workdir: Path) -> tuple[list[Run], list[str]]:
    """Sync MariaDB handler and async HTTP-client handler, alone and together."""
    mariadb = start_mariadb()
    try:
        p = mariadb.params()
        db_url = (f"mysql://{p['user']}:{p['password']}@{p['host']}:{p['port']}/"
                  f"{p['database']}?pool_size=40&acquire_timeout=30")
        upstream = uwsgi_ini_server("upstream hello.py slow (uwsgi.ini, 2 workers)",
                                    "examples.hello:application", workdir,
                                    {**QUIET, "WEBMINI_PROCESSES": "2"})
        with upstream:
            env = {**QUIET, "WEBMINI_BENCH_DB": db_url,
                   "WEBMINI_BENCH_UPSTREAM": f"http://127.0.0.1:{upstream.port}/slow"}
            mini = uwsgi_ini_server("webmini (uwsgi.ini)", APP, workdir, env)
            with mini:
                conns = 200
                for path in ("/db", "/upstream"):
                    wrk(Run("mixed", "warm-up", path, 50), mini.port, 2)
                alone: dict[str, Run] = {}
                both: dict[str, Run] = {}
                for _ in range(rounds):
                    for path in ("/db", "/upstream"):
                        run = wrk(Run("mixed", f"webmini {path} (alone)", path, conns),
                                  mini.port, duration)
                        run.server_cmd = mini.command_line()
                        _show(run)
                        if path not in alone or run.p99_ms < alone[path].p99_ms:
                            alone[path] = run
                    for run in _wrk_both("mixed", mini, ("/db", "/upstream"), conns, duration):
                        _show(run)
                        if run.path not in both or run.p99_ms < both[run.path].p99_ms:
                            both[run.path] = run
    finally:
        mariadb.cleanup()
    runs = [alone["/db"], both["/db"], alone["/upstream"], both["/upstream"]]
    notes = []
    for path, what in (("/db", "sync on MariaDB"), ("/upstream", "async on aiohttp")):
        r = both[path].p99_ms / alone[path].p99_ms if alone[path].p99_ms else float("inf")
        notes.append(f"mixed: {path} ({what}) p99 together / alone = {r:.2f}x "
                     f"(target <= 1.5x: {'ok' if r <= 1.5 else 'ABOVE TARGET'})")
    return runs, notes


def _show(run: Run) -> None:
    print(f"  {run.server:<52} {run.path:<9} c={run.connections:<5} {run.rps:>9,.0f} req/s  "
          f"p50 {run.p50_ms:7.1f} ms  p99 {run.p99_ms:7.1f} ms  failures {_failures(run)}",
          flush=True)


SCENARIOS: dict[str, Scenario] = {
    "slow": scenario_slow,
    "mixed": scenario_mixed,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios and print the table, the notes and the commands."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per timed wrk run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="turns per server; best kept (3)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    args = parser.parse_args(argv)
    if not os.access(WRK, os.X_OK):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    for line in machine() + raise_limits():
        print(line)
    runs, notes = run_scenarios(SCENARIOS, args.only, args.duration, args.rounds, "webmini-async-")
    print_report(runs, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
