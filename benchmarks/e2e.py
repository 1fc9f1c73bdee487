"""End-to-end HTTP benchmark: real servers on loopback, load from wrk.

Scenarios (each one prints its rows as soon as it is done, then one table):

1. ``hello``: ``GET /`` of examples/hello.py (webmini) against a bare PEP 3333
   callable (benchmarks/apps/bare.py), both under uwsgi.ini, unchanged, and
   webmini under gunicorn with webmini's config (gunicorn_conf).
   Target: webmini >= 0.9x the bare callable.
2. ``slow``: ``GET /slow`` (the handler waits 100 ms on gevent.sleep, a slow
   upstream), 1,000 connections: webmini under uwsgi.ini (2 workers x gevent)
   and under gunicorn_conf (4 gevent workers), against the same app under
   uWSGI with 2 processes x 4 threads. The limit
   is connections / latency = 10,000 req/s; target >= 0.9 of it.
3. ``devserver``: ``webmini run`` (gevent dev server) against gunicorn's gevent
   worker on the same app, one process each, for ``/`` (keep-alive, 50
   connections) and ``/slow`` (1,000 connections). Target: >= 1.0x gunicorn.
   Skipped, with a note, when ``webmini.serving.devserver`` is not there.

Every server listens on a free 127.0.0.1 port and is stopped afterwards;
every wrk run is bounded by ``--duration``; the servers of a scenario run
side by side and take turns (``--rounds``), each keeping its best run. uWSGI's ``http-socket`` closes
the connection after each response, so wrk reports one "read error" per
request there: these are counted apart, only non-2xx answers and
connect/timeout errors count as failures.

Usage::

    .venv/bin/python benchmarks/e2e.py            # all scenarios, 3 rounds x 10 s per server
    .venv/bin/python benchmarks/e2e.py --duration 5 --rounds 2 --only hello,slow --json e2e.json
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from localservices import free_port  # noqa: E402  (shared with the tests)

VENV_BIN = Path(sys.executable).parent
UWSGI = str(VENV_BIN / "uwsgi") if (VENV_BIN / "uwsgi").exists() else (shutil.which("uwsgi") or "uwsgi")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
SLOW_LIMIT = 1000 / 0.1  # connections / latency


# ---------------------------------------------------------------- plumbing


def raise_limits() -> list[str]:
    """Raise the open-files limit (wrk and servers inherit it) and somaxconn if allowed."""
    notes = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    notes.append(f"ulimit -n {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
    path = Path("/proc/sys/net/core/somaxconn")
    try:
        if int(path.read_text()) < 4096:
            path.write_text("4096\n")
    except OSError:
        pass
    notes.append(f"net.core.somaxconn {somaxconn()}")
    return notes


def somaxconn() -> int:
    """The kernel's cap on a listen backlog."""
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except OSError:
        return 4096


class Server:
    """One server process on a loopback port; its log goes to a temp file."""

    def __init__(self, name: str, cmd: Sequence[str], port: int, env: dict[str, str] | None = None,
                 cwd: Path = ROOT, workdir: Path | None = None) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.shown_env = env or {}
        self.cwd = cwd
        self.log = (workdir or Path(tempfile.gettempdir())) / f"{name.replace(' ', '_')}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command_line(self) -> str:
        """The exact command, environment overrides first."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.shown_env.items())
        return f"{env} {shlex.join(self.cmd)}".strip()

    def __enter__(self) -> Server:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as r:
                    if r.status == 200:
                        time.sleep(1.0)  # let every worker finish loading
                        return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"{self.name} did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of our own session only
        self.proc.wait()
        self.proc = None


def uwsgi_ini_server(name: str, module: str, workdir: Path,
                     extra_env: dict[str, str] | None = None) -> Server:
    """uWSGI started with the repository's uwsgi.ini, addresses overridden from the environment."""
    port = free_port()
    env = {**(extra_env or {}),
        "WEBMINI_MODULE": module,
        "WEBMINI_HTTP": f"127.0.0.1:{port}",
        "WEBMINI_SOCKET": str(workdir / f"{port}.sock"),
        "WEBMINI_SOCKET_GROUP": str(os.getgid()),
        "WEBMINI_STATS": f"127.0.0.1:{free_port()}",
        "WEBMINI_LISTEN": str(min(4096, somaxconn())),
        "WEBMINI_TOUCH_RELOAD": str(workdir / "reload"),
        # uwsgi.ini refuses root unless told; a benchmark run as root says so.
        **({"WEBMINI_ALLOW_ROOT": "1"} if os.geteuid() == 0 else {}),
    }
    return Server(name, [UWSGI, "--ini", str(ROOT / "uwsgi.ini")], port, env, workdir=workdir)


def gunicorn_conf_server(name: str, module: str, workdir: Path,
                         extra_env: dict[str, str] | None = None) -> Server:
    """gunicorn with webmini's shipped config (gevent worker, 2 per core), same overrides as uwsgi.ini."""
    port = free_port()
    env = {**(extra_env or {}),
        "WEBMINI_HTTP": f"127.0.0.1:{port}",
        "WEBMINI_LISTEN": str(min(4096, somaxconn())),
    }
    return Server(name, [str(VENV_BIN / "gunicorn"), "-c", "python:webmini.serving.gunicorn_conf",
                         "--log-level", "warning", module], port, env, workdir=workdir)


@dataclass
class Run:
    """One wrk run and what it measured."""

    scenario: str
    server: str
    path: str
    connections: int
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    non2xx: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    wrk: str = ""
    server_cmd: str = ""


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else 0.0


def wrk(run: Run, port: int, duration: int, threads: int = 2, timeout: str = "5s") -> Run:
    """Run wrk against ``127.0.0.1:port``; fill ``run`` from its report."""
    cmd = [WRK, f"-t{threads}", f"-c{run.connections}", f"-d{duration}s", f"--timeout={timeout}",
           "--latency", f"http://127.0.0.1:{port}{run.path}"]
    run.wrk = shlex.join(cmd)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        run.rps = float(m.group(1))
    if m := re.search(r"(\d+) requests in", out):
        run.requests = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        run.non2xx = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        run.errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True))
    for pct, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M):
            setattr(run, attr, _ms(m.group(1)))
    return run


def _failures(run: Run) -> int:
    return run.non2xx + run.errors.get("connect", 0) + run.errors.get("timeout", 0)


def compare(scenario: str, servers: Sequence[Server], path: str, connections: int,
            duration: int, rounds: int, warmup: int = 2) -> list[Run]:
    """Start every server, then ``rounds`` interleaved wrk runs; keep each server's best.

    Interleaving and best-of make the ratio robust to other load on the
    machine (which can only slow a run down).
    """
    started: list[Server] = []
    best: dict[str, Run] = {}
    try:
        for server in servers:
            started.append(server.__enter__())
            wrk(Run(scenario, server.name, path, min(connections, 100)), server.port, warmup)
        for _ in range(rounds):
            for server in servers:
                run = wrk(Run(scenario, server.name, path, connections), server.port, duration)
                run.server_cmd = server.command_line()
                print(f"  {server.name:<36} {path:<6} c={connections:<5} {run.rps:>9,.0f} req/s  "
                      f"p50 {run.p50_ms:7.1f} ms  p99 {run.p99_ms:7.1f} ms  "
                      f"failures {_failures(run)}", flush=True)
                if server.name not in best or run.rps > best[server.name].rps:
                    best[server.name] = run
    finally:
        for server in started:
            server.__exit__()
    return [best[s.name] for s in servers]


# ---------------------------------------------------------------- scenarios


def scenario_hello(duration: int, rounds: int, workdir: Path) -> tuple[list[Run], list[str]]:
    """webmini vs a bare PEP 3333 callable, both under uwsgi.ini."""
    # The bare callable writes no access line: webmini runs without its own
    # (WEBMINI_ACCESS_LOG=0, as behind an nginx that logs) for the ratio, and
    # with it in a row of its own, to show what the line costs.
    quiet = {"WEBMINI_ACCESS_LOG": "0"}
    router = {**quiet, "WEBMINI_HTTP_ROUTER": str(os.cpu_count() or 1)}
    bare, mini, logged, routed, gun = compare("hello", [
        uwsgi_ini_server("bare WSGI (uwsgi.ini)", "benchmarks.apps.bare:application", workdir),
        uwsgi_ini_server("webmini (uwsgi.ini, no access log)", "examples.hello:application",
                         workdir, quiet),
        uwsgi_ini_server("webmini (uwsgi.ini, access log)", "examples.hello:application", workdir),
        uwsgi_ini_server("webmini (uwsgi.ini, HTTP router, no access log)",
                         "examples.hello:application", workdir, router),
        gunicorn_conf_server("webmini (gunicorn_conf, no access log)", "examples.hello:application",
                             workdir, quiet),
    ], "/", 50, duration, rounds)
    ratio = mini.rps / bare.rps if bare.rps else 0.0
    verdict = "ok" if ratio >= 0.9 else "BELOW TARGET"
    return [bare, mini, logged, routed, gun], [
        f"hello: webmini / bare callable = {ratio:.2f}x (target >= 0.9x): {verdict}",
        f"hello: with the access line = {logged.rps / mini.rps if mini.rps else 0.0:.2f}x without",
        f"hello: HTTP router (keep-alive) / http-socket = "
        f"{routed.rps / mini.rps if mini.rps else 0.0:.2f}x",
        f"hello: webmini on gunicorn / on uWSGI = {gun.rps / mini.rps if mini.rps else 0.0:.2f}x "
        "(gunicorn keeps connections alive; uWSGI's http-socket closes each one)",
    ]


def scenario_slow(duration: int, rounds: int, workdir: Path) -> tuple[list[Run], list[str]]:
    """1,000 connections on a 100 ms handler: gevent workers vs 2 processes x 4 threads."""
    port = free_port()
    threaded = Server("webmini (uWSGI 2 proc x 4 threads)", [
        UWSGI, "--master", "--processes", "2", "--threads", "4", "--enable-threads",
        "--http-socket", f"127.0.0.1:{port}", "--chdir", str(ROOT),
        "--module", "examples.hello:application", "--need-app", "--die-on-term",
        "--listen", str(min(4096, somaxconn())), "--disable-logging",
    ], port, {"WEBMINI_ACCESS_LOG": "0"}, workdir=workdir)
    quiet = {"WEBMINI_ACCESS_LOG": "0"}
    green, gun, sync = compare("slow", [
        uwsgi_ini_server("webmini (uwsgi.ini, gevent workers)", "examples.hello:application",
                         workdir, quiet),
        gunicorn_conf_server("webmini (gunicorn_conf, gevent workers)", "examples.hello:application",
                             workdir, quiet),
        threaded,
    ], "/slow", 1000, duration, rounds)
    of_limit = green.rps / SLOW_LIMIT
    notes = [
        f"slow: gevent = {of_limit:.2f} of the limit {SLOW_LIMIT:,.0f} req/s "
        f"(target >= 0.9: {'ok' if of_limit >= 0.9 else 'BELOW TARGET'}); "
        f"threaded cap = 2*4/0.1 = 80 req/s",
        f"slow: gevent / threaded = {green.rps / sync.rps if sync.rps else float('inf'):.0f}x",
        f"slow: gunicorn = {gun.rps / SLOW_LIMIT:.2f} of the limit; gunicorn / uWSGI = "
        f"{gun.rps / green.rps if green.rps else 0.0:.2f}x",
    ]
    return [green, gun, sync], notes


def scenario_devserver(duration: int, rounds: int, workdir: Path) -> tuple[list[Run], list[str]]:
    """``webmini run`` vs gunicorn's gevent worker, one process each."""
    webmini_cli = VENV_BIN / "webmini"
    gunicorn = VENV_BIN / "gunicorn"
    if importlib.util.find_spec("webmini.serving.devserver") is None or not webmini_cli.exists():
        return [], ["devserver: SKIPPED, webmini.serving.devserver / the webmini command is not there yet"]
    if not gunicorn.exists():
        return [], ["devserver: SKIPPED, gunicorn is not installed (pip install gunicorn)"]
    runs: list[Run] = []
    notes: list[str] = []
    for path, conns in (("/", 50), ("/slow", 1000)):
        dev_port, gun_port = free_port(), free_port()
        mine, theirs = compare("devserver", [
            Server("webmini run (1 process)", [
                str(webmini_cli), "run", "examples.hello:app", "--host", "127.0.0.1",
                "--port", str(dev_port), "--pool-size", "1000"], dev_port, workdir=workdir),
            Server("gunicorn -k gevent (1 worker)", [
                # -c /dev/null: gunicorn's defaults, not the repository's gunicorn.conf.py
                str(gunicorn), "-c", "/dev/null", "-k", "gevent", "-w", "1",
                "--worker-connections", "1000",
                "--backlog", str(min(4096, somaxconn())), "-b", f"127.0.0.1:{gun_port}",
                "--log-level", "warning", "examples.hello:application"], gun_port, workdir=workdir),
        ], path, conns, duration, rounds)
        runs += [mine, theirs]
        ratio = mine.rps / theirs.rps if theirs.rps else 0.0
        notes.append(f"devserver {path}: webmini run / gunicorn gevent = {ratio:.2f}x "
                     f"(target >= 1.0x: {'ok' if ratio >= 1.0 else 'BELOW TARGET'})")
    return runs, notes


#: a scenario: (duration, rounds, workdir) -> (its runs, its notes)
Scenario = Callable[[int, int, Path], tuple[list[Run], list[str]]]

SCENARIOS: dict[str, Scenario] = {
    "hello": scenario_hello, "slow": scenario_slow, "devserver": scenario_devserver,
}


# ---------------------------------------------------------------- report


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine() -> list[str]:
    """Where the figures come from."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return [
        f"{platform.platform()}, {os.cpu_count()} CPUs ({cpu}), load {os.getloadavg()[0]:.2f}",
        f"Python {platform.python_version()}, uWSGI {_version('uwsgi')}, gevent {_version('gevent')}, "
        f"gunicorn {_version('gunicorn')}, {wrk_version.strip()}",
    ]


def run_scenarios(scenarios: Mapping[str, Scenario], only: str, duration: int, rounds: int,
                  prefix: str) -> tuple[list[Run], list[str]]:
    """Run the comma-separated scenarios ``only`` in one temporary directory (named from
    ``prefix``), printing each one's notes as it ends; return all runs and notes."""
    runs: list[Run] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for name in only.split(","):
            print(f"[{name}]", flush=True)
            got, said = scenarios[name.strip()](duration, rounds, Path(tmp))
            runs += got
            notes += said
            for line in said:
                print("  " + line, flush=True)
    return runs, notes


def print_report(runs: Sequence[Run], notes: Sequence[str]) -> None:
    """Print the table of runs, the notes, then every command behind them (this one last)."""
    print("\n| scenario | server | path | conns | req/s | p50 ms | p99 ms | failures |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r.scenario} | {r.server} | {r.path} | {r.connections} | {r.rps:,.0f} | "
              f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {_failures(r)} |")
    print()
    for line in notes:
        print("- " + line)
    print(f"- load average at the end: {os.getloadavg()[0]:.2f}")
    print("\nCommands:")
    seen: set[str] = set()
    for r in runs:
        for cmd in (r.server_cmd, r.wrk):
            if cmd and cmd not in seen:
                seen.add(cmd)
                print("  " + cmd)
    print("  " + shlex.join([sys.executable, *sys.argv]))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per timed wrk run (10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved runs per server; the best one is kept (3)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--json", help="also write the runs to this file")
    args = parser.parse_args(argv)
    if not os.access(WRK, os.X_OK):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    info = machine() + raise_limits()
    for line in info:
        print(line)
    runs, notes = run_scenarios(SCENARIOS, args.only, args.duration, args.rounds, "webmini-e2e-")
    print_report(runs, notes)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": info, "runs": [asdict(r) for r in runs], "notes": notes}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
