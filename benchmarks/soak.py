"""Soak: the todo example under uwsgi.ini for minutes; RSS and connections per worker over time.

Starts a private MariaDB and three memcached nodes (localservices/),
then uWSGI with the repository's uwsgi.ini serving examples/todo, all on
free loopback ports. ``--clients`` logged-in clients (greenlets here) each
update one todo and read it back in a loop, and every read is checked
against the client's last acknowledged write. Every ``--interval`` seconds
one row: per worker its RSS (uWSGI stats), its open TCP connections to
MariaDB and to memcached (/proc), and the request rate and errors since
the previous row. ``--restart-db-at S`` restarts MariaDB S seconds in (to
watch RSS and connections across it). Bounded: it stops after
``--duration`` seconds. ``--pause S``: each client waits S seconds between
rounds (a moderate rate on a shared machine). ``--trace-worker N``: worker N
(only) starts tracemalloc at half time and writes snapshots then, at three
quarters and at the end (benchmarks/soak_app.py), and the allocation sites
that grew most between the last two are printed.

Usage::

    .venv/bin/python benchmarks/soak.py                       # 180 s, 32 clients
    .venv/bin/python benchmarks/soak.py --duration 120 --restart-db-at 60
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localservices import (  # noqa: E402
    MemcachedCluster,
    call_json,
    free_port,
    http_get,
    start_mariadb,
)

SECRET = "soak-secret-0123456789abcdef0123"


class Counters:
    """Requests, errors (non-2xx other than 401), stale reads."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.stale = 0


def client(port: int, n: int, stop: gevent.event.Event, counts: Counters, pause: float = 0.0) -> None:
    """Log in, create a todo, then update and read it back until ``stop``."""
    cookie, todo_id, version, acked = "", 0, 0, -1
    while not stop.is_set():
        if pause:
            gevent.sleep(pause)
        if not cookie:
            login = call_json(port, "POST", "/login", {"user": f"soak{n}"})
            counts.requests += 1
            cookie = login.cookie if login.status == 200 else ""
            if login.status != 200:
                counts.errors += 1
                gevent.sleep(0.1)
            continue
        if not todo_id:
            made = call_json(port, "POST", "/todos", {"title": "t-1"}, cookie)
            counts.requests += 1
            if made.status == 201:
                todo_id = made.data["id"]
            else:
                counts.errors += made.status != 401
                cookie = "" if made.status == 401 else cookie
            continue
        version += 1
        status = call_json(port, "PATCH", f"/todos/{todo_id}", {"title": f"t{version}"}, cookie).status
        counts.requests += 1
        if status == 200:
            acked = version
        elif status == 401:
            cookie = ""
            continue
        else:
            counts.errors += 1
        got = call_json(port, "GET", f"/todos/{todo_id}", cookie=cookie)
        counts.requests += 1
        if got.status == 200:
            seen = int(got.data["title"][1:])
            if seen < acked:
                counts.stale += 1
            acked = max(acked, seen)
        elif got.status == 401:
            cookie = ""
        else:
            counts.errors += 1


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def connections(pid: int, ports: set[int]) -> int:
    """Established TCP connections of process ``pid`` to any of ``ports`` on loopback."""
    inodes = _socket_inodes(pid)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and remote_port in ports and fields[9] in inodes:
                count += 1
    return count


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (/proc; uWSGI's stats report 0 without memory-report)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stats(port: int) -> dict[str, Any]:
    """uWSGI's JSON stats."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    result: dict[str, Any] = json.loads(data)
    return result


def _trace(port: int, worker: int, action: str) -> str:
    """Ask worker ``worker`` to start tracemalloc or write a snapshot; return its answer."""
    for _ in range(200):
        reply = http_get(port, f"/__soak/trace?worker={worker}&action={action}", timeout=30)
        if reply.status == 200:
            return reply.text
        gevent.sleep(0.05)
    raise RuntimeError(f"worker {worker} never answered the tracemalloc probe")


def _trace_report(snaps: list[str], top: int = 15) -> None:
    """Print the allocation sites that grew most between the last two snapshots."""
    import tracemalloc

    if len(snaps) < 2:
        return
    before, after = (tracemalloc.Snapshot.load(p) for p in snaps[-2:])
    grown = after.compare_to(before, "traceback")
    total = sum(s.size_diff for s in grown)
    print(f"# tracemalloc: {total / 1024:+.1f} KiB traced growth between the last two snapshots")
    for stat in grown[:top]:
        frames = [f"{f.filename}:{f.lineno}"
                  for f in stat.traceback[-6:]]
        print(f"#   {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks  "
              f"{' <- '.join(reversed(frames))}")


def main() -> int:
    """Run the soak; print one row per interval."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=180.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--restart-db-at", type=float, default=0.0)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds each client waits per round")
    parser.add_argument("--trace-worker", type=int, default=0, help="tracemalloc in this worker")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="webmini-soak-"))
    mariadb = start_mariadb()
    (tmp / "memcached").mkdir()
    cluster = MemcachedCluster(tmp / "memcached")
    cluster.start()
    http_port, stats_port = free_port(), free_port()
    env = dict(
        os.environ,
        WEBMINI_MODULE=("benchmarks.soak_app:application" if args.trace_worker
                        else "examples.todo.app:application"),
        WEBMINI_SOAK_TRACE_DIR=str(tmp),
        WEBMINI_HTTP=f"127.0.0.1:{http_port}", WEBMINI_SOCKET=f"127.0.0.1:{free_port()}",
        WEBMINI_STATS=f"127.0.0.1:{stats_port}", WEBMINI_PROCESSES=str(args.processes),
        WEBMINI_GEVENT="200", WEBMINI_LISTEN="128", WEBMINI_TOUCH_RELOAD=str(tmp / "reload"),
        WEBMINI_TODO_MYSQL_URL=mariadb.url, WEBMINI_TODO_MEMCACHED=",".join(cluster.addresses),
        WEBMINI_TODO_SECRET=SECRET,
    )
    if os.geteuid() == 0:
        env["WEBMINI_ALLOW_ROOT"] = "1"  # uwsgi.ini refuses root unless told
    uwsgi = str(Path(sys.executable).parent / "uwsgi")
    # No recycling (max-requests, max-worker-lifetime): it would hide a slow leak.
    cmd = [uwsgi, "--ini", str(ROOT / "uwsgi.ini"), "--logto", str(tmp / "uwsgi.log"),
           "--max-requests", "0", "--max-worker-lifetime", "0"]
    print(f"# {' '.join(cmd)}  (todo example; MariaDB {mariadb.port}, memcached "
          f"{','.join(cluster.addresses)}; {args.clients} clients; {args.duration:.0f} s)", flush=True)
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    stop = gevent.event.Event()
    counts = Counters()
    try:
        deadline = time.monotonic() + 30
        while call_json(http_port, "GET", "/todos").status != 401:
            if time.monotonic() > deadline:
                raise SystemExit("uWSGI did not start")
            time.sleep(0.2)
        db_port = mariadb.port
        mc_ports = {int(a.rsplit(":", 1)[1]) for a in cluster.addresses}
        clients = [gevent.spawn(client, http_port, n, stop, counts, args.pause)
                   for n in range(args.clients)]
        traces = [args.duration * f for f in (0.5, 0.75)] if args.trace_worker else []
        snaps: list[str] = []
        print("| t (s) | req/s | errors | stale | per worker: RSS MB / MariaDB conns / memcached conns |")
        print("|---|---|---|---|---|")
        started = time.monotonic()
        last_req, last_err, restarted = 0, 0, False
        while (elapsed := time.monotonic() - started) < args.duration:
            gevent.sleep(args.interval)
            if args.restart_db_at and not restarted and elapsed >= args.restart_db_at:
                print(f"# restarting MariaDB at {elapsed:.0f} s", flush=True)
                mariadb.restart()
                restarted = True
            if traces and elapsed >= traces[0]:
                if len(traces) == 2:
                    _trace(http_port, args.trace_worker, "start")
                snaps.append(_trace(http_port, args.trace_worker, "snapshot"))
                print(f"# tracemalloc snapshot {snaps[-1]} at {elapsed:.0f} s", flush=True)
                traces.pop(0)
            workers = sorted(stats(stats_port)["workers"], key=lambda w: w["id"])
            cells = [f"{rss_mb(w['pid']):.1f} / {connections(w['pid'], {db_port})} / "
                     f"{connections(w['pid'], mc_ports)}" for w in workers]
            rate = (counts.requests - last_req) / args.interval
            print(f"| {time.monotonic() - started:.0f} | {rate:.0f} | {counts.errors - last_err} | "
                  f"{counts.stale} | {'; '.join(cells)} |", flush=True)
            last_req, last_err = counts.requests, counts.errors
        if args.trace_worker:
            snaps.append(_trace(http_port, args.trace_worker, "snapshot"))
            _trace_report(snaps)
        stop.set()
        gevent.joinall(clients, timeout=30)
        print(f"# total: {counts.requests} requests, {counts.errors} errors, {counts.stale} stale reads")
    finally:
        stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        cluster.stop()
        mariadb.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
