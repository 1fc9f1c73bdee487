"""Faults under load: the todo example while it is reloaded, loses a memcached node and MariaDB.

Starts a private MariaDB and two memcached nodes (localservices/),
then uWSGI with the repository's uwsgi.ini (or gunicorn with
webmini.serving.gunicorn_conf) serving examples/todo with ``--processes``
gevent workers, all on free loopback ports. ``--clients`` logged-in clients
(greenlets here) each update their own todo and read it back in a loop. In
turn: a reload by touching the reload file (uWSGI), a reload by SIGHUP, a
memcached node killed and, later, started again, MariaDB restarted.

Per phase: the longest gap between two consecutive responses (any client),
answers by status (``refused``/``reset``/``timeout``: no HTTP answer at all), logouts
(a 401 to a client that was logged in) and stale reads (a read older than
the client's last acknowledged write). At the end every client's todo is
read from MariaDB and compared with the last write it saw acknowledged.

Usage::

    .venv/bin/python benchmarks/faults.py                   # uWSGI, 4 workers, 16 clients
    .venv/bin/python benchmarks/faults.py --server gunicorn
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localservices import MemcachedCluster, call_json, free_port, start_mariadb  # noqa: E402

SECRET = "faults-secret-0123456789abcdef012"
TIMEOUT = 30.0  # seconds a client waits for an answer (across a reload)


@dataclass
class Phase:
    """What the clients saw during one phase."""

    name: str
    started: float = 0.0
    ended: float = 0.0
    answers: dict[str, int] = field(default_factory=dict)
    logouts: int = 0
    stale: int = 0
    done: list[float] = field(default_factory=list)  # when each response completed

    def gap_ms(self) -> float:
        """Longest time between consecutive responses in the phase (its edges included)."""
        points = [self.started, *sorted(self.done), self.ended]
        return max((b - a for a, b in zip(points, points[1:], strict=False)), default=0.0) * 1000

    def errors(self) -> dict[str, int]:
        """Answers that are neither 2xx nor an expected 401."""
        return {k: v for k, v in self.answers.items() if not (k.startswith("2") or k == "401")}


class Recorder:
    """Routes each response to the current phase."""

    def __init__(self) -> None:
        self.phases: list[Phase] = []
        self.current = Phase("start")

    def begin(self, name: str) -> Phase:
        """Close the current phase and start ``name``."""
        now = time.monotonic()
        self.current.ended = now
        self.current = Phase(name, started=now)
        self.phases.append(self.current)
        return self.current

    def saw(self, status: str) -> None:
        """Count one answer."""
        phase = self.current
        phase.answers[status] = phase.answers.get(status, 0) + 1
        phase.done.append(time.monotonic())


@dataclass
class Client:
    """One logged-in user: its todo and the newest title it saw acknowledged."""

    n: int
    todo_id: int = 0
    acked: int = -1
    attempted: set[int] = field(default_factory=set)


def run_client(port: int, client: Client, stop: gevent.event.Event, rec: Recorder,
               pause: float) -> None:
    """Log in, create a todo, then update and read it back until ``stop``."""
    cookie = ""
    version = 0
    while not stop.is_set():
        gevent.sleep(pause)
        if not cookie:
            login = call_json(port, "POST", "/login", {"user": f"user{client.n}"}, timeout=TIMEOUT)
            rec.saw(login.outcome)
            cookie = login.cookie if login.status == 200 else ""
            continue
        if not client.todo_id:
            made = call_json(port, "POST", "/todos", {"title": "t-1"}, cookie, timeout=TIMEOUT)
            rec.saw(made.outcome)
            if made.status == 201:
                client.todo_id = made.data["id"]
            elif made.status == 401:
                rec.current.logouts += 1
                cookie = ""
            continue
        version += 1
        status = call_json(port, "PATCH", f"/todos/{client.todo_id}",
                           {"title": f"t{version}"}, cookie, timeout=TIMEOUT).outcome
        rec.saw(status)
        if status == "200":
            client.acked, client.attempted = version, set()
        elif status == "401":
            rec.current.logouts += 1
            cookie = ""
            continue
        else:
            client.attempted.add(version)  # may or may not have happened
        got = call_json(port, "GET", f"/todos/{client.todo_id}", cookie=cookie, timeout=TIMEOUT)
        rec.saw(got.outcome)
        if got.status == 200:
            seen = int(got.data["title"][1:])
            if seen in client.attempted:
                client.acked = seen
                client.attempted = {v for v in client.attempted if v > seen}
            elif seen != client.acked:
                rec.current.stale += 1
        elif got.status == 401:
            rec.current.logouts += 1
            cookie = ""


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


class Server:
    """uWSGI (uwsgi.ini) or gunicorn (gunicorn_conf) serving the todo example."""

    def __init__(self, kind: str, tmp: Path, processes: int, env: dict[str, str]) -> None:
        self.kind = kind
        self.port = free_port()
        self.reload_file = tmp / "reload"
        self.reload_file.touch()
        self.log = tmp / f"{kind}.log"
        self.chains = 0
        env = dict(env, WEBMINI_HTTP=f"127.0.0.1:{self.port}", WEBMINI_PROCESSES=str(processes),
                   WEBMINI_GEVENT="200", WEBMINI_LISTEN="128",
                   WEBMINI_MODULE="examples.todo.app:application")
        bindir = Path(sys.executable).parent
        if kind == "uwsgi":
            env.update(WEBMINI_SOCKET=str(tmp / "uwsgi.sock"), WEBMINI_SOCKET_GROUP=str(os.getgid()),
                       WEBMINI_STATS=f"127.0.0.1:{free_port()}",
                       WEBMINI_TOUCH_RELOAD=str(self.reload_file))
            self.cmd = [str(bindir / "uwsgi"), "--ini", str(ROOT / "uwsgi.ini"),
                        "--logto", str(self.log)]
        else:
            self.cmd = [str(bindir / "gunicorn"), "-c", "python:webmini.serving.gunicorn_conf",
                        "--error-logfile", str(self.log), "examples.todo.app:application"]
        if os.geteuid() == 0:
            env["WEBMINI_ALLOW_ROOT"] = "1"  # uwsgi.ini refuses root unless told
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(self.cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the app answers (401: not logged in)."""
        deadline = time.monotonic() + timeout
        while call_json(self.port, "GET", "/todos", timeout=TIMEOUT).status != 401:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.kind} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def workers(self) -> set[int]:
        """The worker pids (the master's children)."""
        return _children(self.proc.pid)

    def wait_replaced(self, old: set[int], count: int, timeout: float = 90.0) -> float:
        """Wait until ``count`` workers run and none of ``old`` is left; return the seconds taken."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            now = self.workers()
            if len(now) >= count and not (now & old) and self._reloaded():
                return time.monotonic() - start
            gevent.sleep(0.1)
        raise SystemExit(f"{self.kind}: workers not replaced in {timeout} s:\n"
                         f"{self.log.read_text()[-3000:]}")

    def _reloaded(self) -> bool:
        # uWSGI ignores a chain reload asked for while one runs: wait for its end.
        if self.kind != "uwsgi":
            return True
        done = self.log.read_text(errors="replace").count("chain reloading complete")
        if done > self.chains:
            self.chains = done
            return True
        return False

    def stop(self) -> None:
        """Stop the server (SIGTERM; SIGKILL the group if it lingers)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def integrity(mariadb: Any, clients: list[Client]) -> tuple[int, int]:
    """(known writes checked, lost) against the rows in MariaDB."""
    conn = mariadb.root_connection()
    lost = checked = 0
    try:
        with conn.cursor() as cur:
            for c in clients:
                if not c.todo_id or c.acked < 0:
                    continue
                cur.execute(f"SELECT title FROM {mariadb.database}.todos WHERE id = %s",
                            (c.todo_id,))
                row = cur.fetchone()
                checked += 1
                seen = int(row[0][1:]) if row else -2
                if seen != c.acked and seen not in c.attempted:
                    lost += 1
    finally:
        conn.close()
    return checked, lost


def main() -> int:
    """Run the faults; print one table row per phase."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=("uwsgi", "gunicorn"), default="uwsgi")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pause", type=float, default=0.01, help="seconds per client round")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds of load between faults")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="webmini-faults-"))
    mariadb = start_mariadb()
    (tmp / "memcached").mkdir()
    cluster = MemcachedCluster(tmp / "memcached", size=2)
    cluster.start()
    env = dict(os.environ, WEBMINI_TODO_MYSQL_URL=mariadb.url,
               WEBMINI_TODO_MEMCACHED=",".join(cluster.addresses), WEBMINI_TODO_SECRET=SECRET)
    server = Server(args.server, tmp, args.processes, env)
    rec = Recorder()
    stop = gevent.event.Event()
    clients = [Client(n) for n in range(args.clients)]
    try:
        server.wait_ready()
        print(f"# {' '.join(server.cmd)}: todo example, {args.processes} workers, MariaDB "
              f"{mariadb.port}, memcached {','.join(cluster.addresses)}, {args.clients} clients "
              f"(pause {args.pause} s)", flush=True)
        greenlets = [gevent.spawn(run_client, server.port, c, stop, rec, args.pause)
                     for c in clients]
        gevent.sleep(2.0)  # everyone logged in
        rec.begin("steady load")
        gevent.sleep(args.settle)
        reloads = [("touch", lambda: os.utime(server.reload_file))] if args.server == "uwsgi" else []
        reloads.append(("SIGHUP", lambda: server.proc.send_signal(signal.SIGHUP)))
        took: dict[str, float] = {}
        for name, trigger in reloads:
            old = server.workers()
            rec.begin(f"reload by {name}")
            trigger()
            took[name] = server.wait_replaced(old, args.processes)
            gevent.sleep(1.0)
        rec.begin("memcached node killed")
        victim = cluster.nodes[1]
        victim.kill()
        gevent.sleep(args.settle)
        rec.begin("memcached node back")
        victim.start(same_port=True)
        gevent.sleep(args.settle + 6.0)  # the ring's retry delay (5 s), then traffic
        rec.begin("MariaDB restarted")
        mariadb.restart()
        gevent.sleep(args.settle)
        rec.begin("after")
        gevent.sleep(args.settle)
        rec.begin("end")
        stop.set()
        gevent.joinall(greenlets, timeout=30)
        checked, lost = integrity(mariadb, clients)
        print("| phase | s | answers | longest gap (ms) | errors by code | logouts | stale reads |")
        print("|---|---|---|---|---|---|---|")
        for p in rec.phases[:-1]:
            errors = ", ".join(f"{k}: {v}" for k, v in sorted(p.errors().items())) or "0"
            extra = next((f" ({took[k]:.1f} s)" for k in took if p.name.endswith(k)), "")
            print(f"| {p.name}{extra} | {p.ended - p.started:.1f} | {len(p.done)} | "
                  f"{p.gap_ms():.0f} | {errors} | {p.logouts} | {p.stale} |")
        print(f"# known writes checked in MariaDB: {checked}, lost: {lost}")
    finally:
        stop.set()
        server.stop()
        cluster.stop()
        mariadb.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
