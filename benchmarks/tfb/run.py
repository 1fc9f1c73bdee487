"""TechEmpower's six test types, webmini and its peers side by side on one private MariaDB.

One command: starts a private MariaDB, loads benchmarks/tfb/schema.sql,
starts every server on free loopback ports (webmini under the project's
uwsgi.ini, optionally nginx in front as examples/nginx.conf ships it; Flask,
Falcon and Bottle on gunicorn's gevent worker; FastAPI on uvicorn; web.py
0.76 on uWSGI gevent; the same worker count for all: two per core, as
uwsgi.ini runs), checks each with TFB's verifier (benchmarks/tfb/verify.py),
then runs wrk in interleaved rounds (test by test, server by server, each
keeping its best round) and prints a table with ratios, and where the CPU
went during each best run (the server's processes, mysqld, wrk, the rest of
the machine) from /proc.

Concurrency: TFB runs 16-512 connections against a 28-core server (plaintext
256-16,384, 16 requests pipelined). Scaled to this machine's 2 cores (which
also run wrk and MariaDB), the default is 64 connections (``--conns
16,64,256`` sweeps and keeps the best level, as TFB reports the peak), and
plaintext at 256 connections with 16 pipelined requests on servers that
keep connections alive (uWSGI's http-socket closes after every response, so
there it runs unpipelined: wrk would count 15 lost requests per
connection). ``/queries`` and ``/updates`` use 20 queries per request.

    .venv/bin/python benchmarks/tfb/run.py                      # ~10 min: 2 rounds x 5 s
    .venv/bin/python benchmarks/tfb/run.py --only json,db --quick
    .venv/bin/python benchmarks/tfb/run.py --servers webmini,falcon --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.e2e import free_port, machine, raise_limits, somaxconn  # noqa: E402
from benchmarks.tfb.db_setup import DB_NAME, DB_USER, load_into  # noqa: E402
from benchmarks.tfb.verify import verify  # noqa: E402

VENV_BIN = Path(sys.executable).parent
UWSGI = str(VENV_BIN / "uwsgi")
GUNICORN = str(VENV_BIN / "gunicorn")
UVICORN = str(VENV_BIN / "uvicorn")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WORKERS = 2 * (os.cpu_count() or 1)  # uwsgi.ini's default: two per core
ROUTER_PROCESSES = os.cpu_count() or 1  # uwsgi.ini WEBMINI_HTTP_ROUTER: one router process per core
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the tests


@dataclass(frozen=True)
class Test:
    """One TFB test type: its URL and load."""

    name: str
    path: str
    pipeline: int = 1


TESTS = {
    "json": Test("json", "/json"),
    "plaintext": Test("plaintext", "/plaintext", pipeline=16),
    "db": Test("db", "/db"),
    "queries": Test("queries", "/queries?queries=20"),
    "fortunes": Test("fortunes", "/fortunes"),
    "updates": Test("updates", "/updates?queries=20"),
}


# ---------------------------------------------------------------- CPU accounting


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) of every process in session ``sid``, the exited ones too.

    A uWSGI worker recycled during a run (``max-requests``) takes its CPU with it
    from ``/proc``; its parent, once it has reaped it, carries it in ``cutime``
    and ``cstime``, which are counted here.
    """
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(entry)
            if f is not None and int(f[3]) == sid:
                total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / TICK


def pid_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of one process."""
    f = _stat_fields(pid)
    return (int(f[11]) + int(f[12])) / TICK if f else 0.0


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(parts) - parts[3] - parts[4]) / TICK  # minus idle and iowait


# ---------------------------------------------------------------- servers


class Proc:
    """One server process in its own session, its output in a log file."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.cmd, self.env, self.log = list(cmd), env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn it."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, env={**os.environ, **self.env}, cwd=ROOT,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it and anything left in its session."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of our own session only
        self.proc.wait()
        self.proc = None

    def command_line(self) -> str:
        """The command, environment overrides first."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items() if k != "TFB_DATABASE_URL")
        return f"{env} {shlex.join(self.cmd)}".strip()


@dataclass
class Server:
    """A server under test: one or more processes, the port wrk hits."""

    key: str
    name: str
    wsgi: bool
    pipelining: bool
    port: int
    procs: list[Proc]
    ready_ports: list[int] = field(default_factory=list)

    def start(self) -> Server:
        """Start its processes in order, each answering ``/plaintext`` before the next."""
        for proc, port in zip(self.procs, self.ready_ports or [self.port], strict=False):
            proc.start()
            deadline = time.monotonic() + 60
            while True:
                assert proc.proc is not None
                if proc.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start:\n"
                                       f"{proc.log.read_text(errors='replace')[-3000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/plaintext", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.2)
        time.sleep(1.0)  # let every worker finish importing
        return self

    def stop(self) -> None:
        """Stop every process (the front one first)."""
        for proc in reversed(self.procs):
            proc.stop(signal.SIGQUIT if proc.cmd[0] == NGINX else signal.SIGTERM)

    def cpu(self) -> float:
        """CPU seconds used so far by its live processes."""
        return sum(session_cpu(p.proc.pid) for p in self.procs if p.proc is not None)


def uwsgi_ini(workdir: Path, env: dict[str, str], key: str, name: str,
              socket_addr: str | None = None, router: int = 0) -> tuple[Proc, int]:
    """webmini's app under the repository's uwsgi.ini, addresses from the environment."""
    port = free_port()
    env = {**env,
           **({"WEBMINI_HTTP_ROUTER": str(router)} if router else {}),
           "WEBMINI_MODULE": "benchmarks.tfb.webmini_app:application",
           "WEBMINI_HTTP": f"127.0.0.1:{port}",
           "WEBMINI_SOCKET": socket_addr or str(workdir / f"{key}-uwsgi.sock"),
           "WEBMINI_SOCKET_GROUP": str(os.getgid()),
           "WEBMINI_STATS": f"127.0.0.1:{free_port()}",
           "WEBMINI_PROCESSES": str(WORKERS),
           "WEBMINI_LISTEN": str(min(4096, somaxconn())),
           "WEBMINI_TOUCH_RELOAD": str(workdir / f"{key}.reload"),
           # No access line per request: no peer here writes one (gunicorn and uvicorn
           # run without access logs), and TFB's implementations turn request logging off.
           "WEBMINI_ACCESS_LOG": "0",
           # uwsgi.ini refuses root unless told; a benchmark run as root says so.
           **({"WEBMINI_ALLOW_ROOT": "1"} if os.geteuid() == 0 else {})}
    return Proc([UWSGI, "--ini", str(ROOT / "uwsgi.ini")], env, workdir / f"{key}.log"), port


def server_webmini(workdir: Path, env: dict[str, str]) -> Server:
    """webmini, uwsgi.ini's HTTP socket (one request per connection)."""
    proc, port = uwsgi_ini(workdir, env, "webmini", "webmini")
    return Server("webmini", "webmini (uwsgi.ini)", True, False, port, [proc])


def server_webmini_router(workdir: Path, env: dict[str, str]) -> Server:
    """webmini, uwsgi.ini with WEBMINI_HTTP_ROUTER (uWSGI's keep-alive HTTP router, one per core)."""
    proc, port = uwsgi_ini(workdir, env, "webmini-router", "webmini", router=ROUTER_PROCESSES)
    return Server("webmini-router", "webmini (uwsgi.ini, HTTP router)", True, False, port, [proc])


_NGINX_MAIN = """\
{user}worker_processes 1;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


def server_webmini_nginx(workdir: Path, env: dict[str, str]) -> Server:
    """webmini, uwsgi.ini behind examples/nginx.conf (one nginx worker, keep-alive to clients)."""
    sock = workdir / "webmini-nginx.sock"
    uwsgi, uwsgi_port = uwsgi_ini(workdir, env, "webmini-nginx-uwsgi", "webmini", str(sock))
    port = free_port()
    tmp = workdir / "nginx"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy("/etc/nginx/uwsgi_params", tmp / "uwsgi_params")
    site = (ROOT / "examples" / "nginx.conf").read_text()
    site, n_up = re.subn(r"server unix:/run/webmini/uwsgi\.sock;", f"server unix:{sock};", site)
    if n_up != 1:
        raise RuntimeError("examples/nginx.conf: expected one 'server unix:/run/webmini/uwsgi.sock;'")
    site = re.sub(r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{port};", site, flags=re.M)
    site = re.sub(r"^\s*listen \[::\]:80;\n", "", site, flags=re.M)
    (tmp / "site.conf").write_text(site)
    # As root, nginx's workers would run as nobody and could not reach the socket in our temp dir.
    user = "user root;\n" if os.getuid() == 0 else ""
    (tmp / "nginx.conf").write_text(_NGINX_MAIN.format(tmp=tmp, user=user))
    nginx = Proc([NGINX, "-p", str(tmp), "-e", f"{tmp}/nginx-error.log", "-c", str(tmp / "nginx.conf"),
                  "-g", f"daemon off; pid {tmp}/nginx.pid;"], {}, workdir / "nginx.log")
    return Server("webmini-nginx", "webmini (nginx + uwsgi.ini)", True, True, port,
                  [uwsgi, nginx], [uwsgi_port, port])


def _gunicorn(key: str, name: str, module: str) -> Callable[[Path, dict[str, str]], Server]:
    def make(workdir: Path, env: dict[str, str]) -> Server:
        port = free_port()
        cmd = [GUNICORN, "-k", "gevent", "-w", str(WORKERS), "--worker-connections", "1000",
               "--backlog", str(min(4096, somaxconn())), "--keep-alive", "30",
               "-b", f"127.0.0.1:{port}", "--log-level", "warning", module]
        return Server(key, name, True, True, port, [Proc(cmd, env, workdir / f"{key}.log")])

    make.__doc__ = f"{name}."
    return make


def server_fastapi(workdir: Path, env: dict[str, str]) -> Server:
    """FastAPI on uvicorn (uvloop, httptools), aiomysql."""
    port = free_port()
    cmd = [UVICORN, "benchmarks.tfb.peers.fastapi_app:app", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(WORKERS), "--no-access-log",
           "--log-level", "warning", "--backlog", str(min(4096, somaxconn()))]
    return Server("fastapi", "FastAPI (uvicorn)", False, True, port,
                  [Proc(cmd, env, workdir / "fastapi.log")])


def server_webpy(workdir: Path, env: dict[str, str]) -> Server:
    """web.py 0.76 on uWSGI gevent (uwsgi.ini's process model, its own command line)."""
    port = free_port()
    cmd = [UWSGI, "--master", "--processes", str(WORKERS), "--gevent", "1000",
           "--gevent-early-monkey-patch", "--lazy-apps", "--single-interpreter",
           "--enable-threads", "--thunder-lock", "--http-socket", f"127.0.0.1:{port}",
           "--chdir", str(ROOT), "--module", "benchmarks.tfb.peers.webpy_app:application",
           "--need-app", "--die-on-term", "--disable-logging", "--buffer-size", "16384",
           "--listen", str(min(4096, somaxconn()))]
    return Server("webpy", "web.py 0.76 (uWSGI gevent)", True, False, port,
                  [Proc(cmd, env, workdir / "webpy.log")])


SERVERS: dict[str, Callable[[Path, dict[str, str]], Server]] = {
    "webmini": server_webmini,
    "webmini-router": server_webmini_router,
    "webmini-nginx": server_webmini_nginx,
    "falcon": _gunicorn("falcon", "Falcon (gunicorn gevent)", "benchmarks.tfb.peers.falcon_app:app"),
    "flask": _gunicorn("flask", "Flask (gunicorn gevent)", "benchmarks.tfb.peers.flask_app:app"),
    "bottle": _gunicorn("bottle", "Bottle (gunicorn gevent)", "benchmarks.tfb.peers.bottle_app:app"),
    "fastapi": server_fastapi,
    "webpy": server_webpy,
}


# ---------------------------------------------------------------- database


def mariadb_runner() -> Any:
    """The project's private-MariaDB runner (localservices/, the one the tests use)."""
    import localservices

    return localservices


# ---------------------------------------------------------------- wrk


@dataclass
class Run:
    """One timed wrk run against one server, and where the CPU went meanwhile."""

    test: str
    server: str
    connections: int
    pipeline: int
    rps: float = 0.0
    requests: int = 0
    p99_ms: float = 0.0
    failures: int = 0
    seconds: float = 0.0
    cpu_server: float = 0.0
    cpu_mysqld: float = 0.0
    cpu_wrk: float = 0.0
    cpu_busy: float = 0.0
    wrk: str = ""

    def server_us(self) -> float:
        """CPU the server's processes spent per request, in microseconds (robust to other load)."""
        return 1e6 * self.cpu_server / self.requests if self.requests else 0.0

    def split(self) -> str:
        """CPU use in % of one core: server / mysqld / wrk / rest of the machine."""
        s = self.seconds or 1.0
        other = max(0.0, self.cpu_busy - self.cpu_server - self.cpu_mysqld - self.cpu_wrk)
        return (f"{100 * self.cpu_server / s:.0f} / {100 * self.cpu_mysqld / s:.0f} / "
                f"{100 * self.cpu_wrk / s:.0f} / {100 * other / s:.0f}")


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(server: Server, test: Test, conns: int, duration: float, mysqld_pid: int) -> Run:
    """One wrk run; CPU of the server, mysqld and wrk read from /proc and wait4."""
    pipeline = test.pipeline if server.pipelining else 1
    cmd = [WRK, "-t2", f"-c{conns}", f"-d{duration:g}s", "--timeout=8s", "--latency",
           f"http://127.0.0.1:{server.port}{test.path}"]
    if pipeline > 1:
        cmd += ["-s", str(HERE / "pipeline.lua"), "--", str(pipeline)]
    run = Run(test.name, server.key, conns, pipeline, wrk=shlex.join(cmd))
    s0, m0, b0, t0 = server.cpu(), pid_cpu(mysqld_pid), machine_busy(), time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        # Bounded: a wrk stuck well past its duration (a starved machine) is killed.
        guard = threading.Timer(duration + 30, proc.kill)
        guard.start()
        _, status, usage = os.wait4(proc.pid, 0)
        guard.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        run.seconds = time.monotonic() - t0
        run.cpu_server, run.cpu_mysqld = server.cpu() - s0, pid_cpu(mysqld_pid) - m0
        run.cpu_busy = machine_busy() - b0
        run.cpu_wrk = usage.ru_utime + usage.ru_stime
        out.seek(0)
        text = out.read()
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        run.rps = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        run.requests = int(m.group(1))
    if m := re.search(r"^\s+99(?:\.000)?%\s+([\d.]+)(us|ms|s|m)", text, re.M):
        run.p99_ms = float(m.group(1)) * _UNIT_MS[m.group(2)]
    failures = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        failures += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read \d+, write \d+, timeout (\d+)", text):
        failures += int(m.group(1)) + int(m.group(2))  # read errors: http-socket closes, by design
    run.failures = failures
    return run


# ---------------------------------------------------------------- report


def table(tests: list[str], servers: list[Server], best: dict[tuple[str, str], Run]) -> list[str]:
    """The req/s table with webmini's ratios to the best peer and the best WSGI peer."""
    minis = [s for s in servers if s.key.startswith("webmini")]
    peers = [s for s in servers if not s.key.startswith("webmini")]
    head = ["test", *(s.name for s in servers)]
    for m in minis:
        head += [f"{m.key} / best peer", f"{m.key} / best WSGI peer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in tests:
        row = [t]
        for s in servers:
            r = best.get((t, s.key))
            row.append("-" if r is None else f"{r.rps:,.0f}" + (f" ({r.failures} failed)" if r.failures else ""))
        for m in minis:
            mine = best.get((t, m.key))
            for group in (peers, [p for p in peers if p.wsgi]):
                rivals = [best[(t, p.key)] for p in group if (t, p.key) in best]
                top = max(rivals, key=lambda r: r.rps, default=None)
                row.append("-" if mine is None or top is None or not top.rps
                           else f"{mine.rps / top.rps:.2f} ({top.server})")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def cpu_table(tests: list[str], servers: list[Server], best: dict[tuple[str, str], Run]) -> list[str]:
    """Per best run: connections, pipelining, p99, CPU split in % of one core."""
    lines = ["| test | server | conns | pipeline | req/s | p99 ms | server CPU µs/req | "
             "CPU % of a core: server / mysqld / wrk / other |",
             "|---|---|---|---|---|---|---|---|"]
    for t in tests:
        for s in servers:
            r = best.get((t, s.key))
            if r is not None:
                lines.append(f"| {t} | {s.key} | {r.connections} | {r.pipeline} | {r.rps:,.0f} | "
                             f"{r.p99_ms:.1f} | {r.server_us():.0f} | {r.split()} |")
    return lines


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Start MariaDB and the servers, verify, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(TESTS), help="comma-separated tests")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated servers")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds, best kept (2)")
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run (5)")
    parser.add_argument("--conns", default="64", help="connection levels (not plaintext), best kept")
    parser.add_argument("--plaintext-conns", default="256", help="plaintext connection levels")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, 1 s warm-up")
    parser.add_argument("--no-verify", action="store_true", help="skip the verifier")
    parser.add_argument("--json", help="also write every run to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 3
    tests = [t.strip() for t in args.only.split(",") if t.strip()]
    keys = [s.strip() for s in args.servers.split(",") if s.strip()]
    for name in tests:
        if name not in TESTS:
            parser.error(f"unknown test {name!r}: {', '.join(TESTS)}")
    for key in keys:
        if key not in SERVERS:
            parser.error(f"unknown server {key!r}: {', '.join(SERVERS)}")
    if not os.access(WRK, os.X_OK):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    conns = [int(c) for c in args.conns.split(",")]
    plain_conns = [int(c) for c in args.plaintext_conns.split(",")]
    info = machine() + raise_limits() + [f"{WORKERS} workers per server; {args.rounds} rounds x "
                                         f"{args.duration:g} s; tests {','.join(tests)}"]
    for line in info:
        print(line, flush=True)

    runner = mariadb_runner()
    db = runner.start_mariadb()
    servers: list[Server] = []
    best: dict[tuple[str, str], Run] = {}
    runs: list[Run] = []
    failed: dict[str, list[str]] = {}
    try:
        password = secrets.token_urlsafe(12)
        url = load_into(db, password)
        db_params = {"host": db.host, "port": db.port, "user": DB_USER, "password": password,
                     "database": DB_NAME}
        assert db.proc is not None
        mysqld = db.proc.pid
        workdir = Path(tempfile.mkdtemp(prefix="webmini-tfb-"))
        env = {"TFB_DATABASE_URL": url}
        for key in keys:
            server = SERVERS[key](workdir, env)
            print(f"starting {server.name}: {' && '.join(p.command_line() for p in server.procs)}",
                  flush=True)
            servers.append(server.start())
            if not args.no_verify:
                problems = verify(f"http://127.0.0.1:{server.port}", db_params)
                print(f"  verify: {'ok' if not problems else f'{len(problems)} PROBLEM(S)'}", flush=True)
                for p in problems:
                    print(f"    {p}", flush=True)
                if problems:
                    failed[key] = problems
        measured = [s for s in servers if s.key not in failed]
        warmed: set[tuple[str, str]] = set()
        for rnd in range(args.rounds):
            print(f"[round {rnd + 1}/{args.rounds}]", flush=True)
            for name in tests:
                test = TESTS[name]
                for c in plain_conns if name == "plaintext" else conns:
                    for server in measured:
                        if (name, server.key) not in warmed:
                            wrk(server, test, min(c, 64), 1 if args.quick else 2, mysqld)
                            warmed.add((name, server.key))
                        run = wrk(server, test, c, args.duration, mysqld)
                        runs.append(run)
                        print(f"  {name:<9} {server.key:<14} c={c:<4} p={run.pipeline:<2} "
                              f"{run.rps:>9,.0f} req/s  p99 {run.p99_ms:7.1f} ms  "
                              f"failures {run.failures}  srv {run.server_us():.0f} µs/req  "
                              f"CPU srv/db/wrk/other {run.split()}", flush=True)
                        key = (name, server.key)
                        if key not in best or run.rps > best[key].rps:
                            best[key] = run
    finally:
        for server in servers:
            server.stop()
        db.cleanup()

    print()
    print("\n".join(table(tests, servers, best)))
    print()
    print("\n".join(cpu_table(tests, servers, best)))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (2 cores; other work on the machine "
          "shows as 'other')")
    for key, problems in failed.items():
        print(f"{key}: FAILED verification, not measured: {'; '.join(problems[:5])}")
    print("\nServers:")
    for server in servers:
        for proc in server.procs:
            print("  " + proc.command_line())
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "runs": [asdict(r) for r in runs],
                                               "failed": failed}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
