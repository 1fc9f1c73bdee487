"""What the default access line costs: defaults against ``WEBMINI_ACCESS_LOG=0``, in one run.

Two measurements, each interleaving the two settings and keeping each one's best:

1. in-process, ``benchmarks/inproc.py`` style: ``GET /`` of the inproc
   benchmark app through ``app.wsgifunc()``, a fresh environ per request,
   logging set up by :func:`webmini.logs.configure` writing to a file (what a
   server's stderr is), in two shapes: a plain loop, and each request in its
   own greenlet (how uWSGI's and gunicorn's gevent workers call the app);
2. end to end: ``uwsgi --ini uwsgi.ini`` (4 gevent workers) serving
   ``GET /slow`` of examples/hello.py (waits 100 ms) to wrk with 1,000
   connections, defaults against ``WEBMINI_ACCESS_LOG=0``.

Usage::

    .venv/bin/python benchmarks/access_cost.py                       # ~2 minutes
    .venv/bin/python benchmarks/access_cost.py --duration 10 --rounds 3 --skip-e2e
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

INPROC = r'''
import os, sys, time
from gevent import monkey
monkey.patch_all()
import gevent
sys.path[:0] = [{here!r}, {root!r}]
import inproc
from apps_inproc import webmini_app
import webmini as web
from webmini import logs
from webmini.config import config

sys.stderr = open({log!r}, "a")   # the log handler writes here, as to a server's log file
logs.configure()
template = inproc.scenario_environ("static GET /")


def build(on):
    config.access_log = on
    return web.application(webmini_app.URLS, vars(webmini_app)).wsgifunc()


apps = {{"defaults": build(True), "WEBMINI_ACCESS_LOG=0": build(False)}}
config.access_log = True   # what the defaults app checks per request
n_loop, n_green, batch = 100_000, 20_000, 100


def loop(app):
    # The lines still waiting are written inside the timed run: each shape
    # pays for its own lines (not the next run for them).
    t0 = time.perf_counter()
    inproc.run_batch(app, template, n_loop)
    logs.flush()
    return n_loop / (time.perf_counter() - t0)


def greenlets(app):
    def one():
        inproc.run_batch(app, template, 1)
    t0 = time.perf_counter()
    for _ in range(n_green // batch):
        gevent.joinall([gevent.spawn(one) for _ in range(batch)])
    logs.flush()
    return n_green / (time.perf_counter() - t0)


best = {{(shape, name): 0.0 for shape in ("loop", "greenlet") for name in apps}}
for _ in range({rounds}):
    for name, app in apps.items():
        for shape in ("loop", "greenlet"):
            rate = loop(app) if shape == "loop" else greenlets(app)
            best[shape, name] = max(best[shape, name], rate)
for (shape, name), rate in best.items():
    print(shape, name, rate, file=sys.__stdout__)
'''


def inprocess(rounds: int) -> dict[tuple[str, str], float]:
    """Run the in-process measurement in a fresh interpreter; return req/s per (shape, setting)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = INPROC.format(here=str(HERE), root=str(ROOT), log=str(Path(tmp) / "access.log"),
                               rounds=rounds)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, cwd=ROOT, env={**os.environ, "WEBMINI_ACCESS_LOG": "1"})
        lines = (Path(tmp) / "access.log").read_text().count("webmini.access:")
    rates = {}
    for row in out.stdout.splitlines():
        shape, rest = row.split(" ", 1)
        name, rate = rest.rsplit(" ", 1)
        rates[shape, name] = float(rate)
    print(f"  in-process: {lines:,} access lines written", flush=True)
    return rates


def session_cpu(leader: int) -> float:
    """CPU seconds (user + system) of every live process in ``leader``'s session."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == leader:  # field 6, the session id
            total += int(fields[11]) + int(fields[12])
    return total / tick


def served(e2e: Any, servers: list[Any], duration: int,
           rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Interleaved wrk runs (-c1000 /slow); best req/s and least CPU µs per request per server."""
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    started = []
    try:
        for server in servers:
            started.append(server.__enter__())
            e2e.wrk(e2e.Run("warm", server.name, "/slow", 100), server.port, 2)
        for _ in range(rounds):
            for server in servers:
                before = session_cpu(server.proc.pid)
                run = e2e.wrk(e2e.Run("slow", server.name, "/slow", 1000), server.port, duration)
                used = session_cpu(server.proc.pid) - before
                per = used / max(run.requests, 1) * 1e6
                print(f"  {server.name:<34} {run.rps:>8,.0f} req/s  {per:6.0f} µs CPU/request  "
                      f"p50 {run.p50_ms:6.1f} ms  failures {run.non2xx}  ({run.wrk})", flush=True)
                best[server.name] = max(best.get(server.name, 0.0), run.rps)
                cpu[server.name] = min(cpu.get(server.name, float("inf")), per)
    finally:
        for server in started:
            server.__exit__()
    return best, cpu


def main(argv: list[str] | None = None) -> int:
    """Measure and print both ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--skip-e2e", action="store_true", help="in-process only")
    args = parser.parse_args(argv)

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
          flush=True)
    rates = inprocess(args.rounds)
    rows = []
    for shape in ("loop", "greenlet"):
        on, off = rates[shape, "defaults"], rates[shape, "WEBMINI_ACCESS_LOG=0"]
        rows.append((f"in-process GET / ({shape})", on, off))
    if not args.skip_e2e:
        sys.path.insert(0, str(HERE))
        import e2e  # noqa: PLC0415 - its servers and wrk driver

        e2e.raise_limits()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            four = {"WEBMINI_PROCESSES": "4"}
            servers = [
                e2e.uwsgi_ini_server("uwsgi.ini, defaults", "examples.hello:application", work,
                                     four),
                e2e.uwsgi_ini_server("uwsgi.ini, WEBMINI_ACCESS_LOG=0",
                                     "examples.hello:application", work,
                                     {**four, "WEBMINI_ACCESS_LOG": "0"}),
            ]
            best, cpu = served(e2e, servers, args.duration, args.rounds)
            lines = servers[0].log.read_text(errors="replace").count("webmini.access:")
            print(f"  {lines:,} access lines in the defaults server's log", flush=True)
        names = [s.name for s in servers]
        rows.append(("uwsgi.ini x4, wrk -c1000 GET /slow (100 ms): req/s",
                     best[names[0]], best[names[1]]))
        # CPU per request of the whole server (master + workers): what the
        # line costs, independent of what else runs on the machine.
        rows.append(("same, server CPU per request (µs; ratio = off / on)",
                     cpu[names[0]], cpu[names[1]]))
    print("\n| measurement | defaults (access line on) | WEBMINI_ACCESS_LOG=0 | ratio |")
    print("|---|---|---|---|")
    for name, on, off in rows:
        ratio = off / on if "CPU" in name else on / off
        print(f"| {name} | {on:,.0f} | {off:,.0f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
