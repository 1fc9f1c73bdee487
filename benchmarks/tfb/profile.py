"""Where a TFB server's workers spend their CPU under load, by layer (py-spy samples).

Starts a private MariaDB and the servers of benchmarks/tfb/run.py, and for
each one runs wrk against one test while py-spy samples every worker process
(not uWSGI's master or HTTP router, not nginx). Each sample's innermost
Python frame is put in one layer:

* socket system calls: gevent's socket ``send``/``recv``/``sendall``/``recv_into``
  (the time inside the kernel: on loopback, sending also runs the receiver's
  side of TCP and wakes MariaDB);
* event loop: gevent's hub, greenlet switches, timers;
* database driver: pymysql (or aiomysql);
* framework: webmini, Bottle, Flask, Falcon, FastAPI, Starlette, web.py;
* server: gunicorn, uvicorn, or a worker running no Python (uWSGI's C code);
* other: the stdlib and the rest (json, random...).

A layer's share is of the worker's busy samples; "framework" is the part a
framework could make cheaper. py-spy needs ptrace rights (root, or
``kernel.yama.ptrace_scope=0``)::

    .venv/bin/python benchmarks/tfb/profile.py --test queries --servers webmini-router,bottle
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from benchmarks.tfb import run  # noqa: E402
from benchmarks.tfb.db_setup import load_into  # noqa: E402

PY_SPY = str(run.VENV_BIN / "py-spy")
SOCKET_CALLS = re.compile(r"^(SocketMixin\.)?(send|sendall|_sendall|recv|recv_into|recvfrom"
                          r"|getsockopt) \((gevent/_socketcommon|socket)\.py")
# py-spy names a frame "function (path:line)", the path relative to sys.path.
LAYERS = (
    ("database driver", ("(pymysql/", "(aiomysql/")),
    ("framework", ("(webmini/", "(bottle.py", "(flask/", "(falcon/", "(fastapi/",
                   "(starlette/", "(web/", "(benchmarks/tfb/")),
    ("server", ("(gunicorn/", "(uvicorn/", "(uvloop/", "(httptools/")),
    ("event loop", ("(gevent/", "(greenlet/", "(asyncio/")),
)
_PROCESS = re.compile(r'^process \d+:"(.*)"$')


def layer(frame: str) -> str:
    """The layer of one py-spy frame (``function (file:line)``)."""
    if SOCKET_CALLS.match(frame):
        return "socket system calls"
    for name, marks in LAYERS:
        if any(mark in frame for mark in marks):
            return name
    return "other"


def worker_of(frames: list[str]) -> bool:
    """True when the sample comes from a worker process (not a master, router or nginx)."""
    names = [m.group(1) for f in frames if (m := _PROCESS.match(f))]
    if not names:
        return True  # a single-process target: py-spy names no process
    name = names[-1]
    return not any(word in name for word in ("master", "uWSGI http", "nginx", "arbiter"))


def split(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Worker samples, samples per layer, and samples per innermost function."""
    total, layers, functions = 0, collections.Counter[str](), collections.Counter[str]()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or not worker_of(frames):
            continue
        n = int(count)
        total += n
        python = [f for f in frames if not _PROCESS.match(f) and not f.startswith("thread ")]
        if not python:
            layers["server"] += n  # the worker was in C: uWSGI's own code
            functions["(no Python frame: server C code)"] += n
            continue
        layers[layer(python[-1])] += n
        functions[python[-1]] += n
    return total, layers, functions


def profile(server: run.Server, path: str, conns: int, seconds: float, out: Path) -> float:
    """wrk on ``path`` for a warm-up and ``seconds``, py-spy sampling meanwhile; its req/s."""
    wrk = subprocess.Popen([run.WRK, "-t2", f"-c{conns}", f"-d{seconds + 3:g}s",
                            f"http://127.0.0.1:{server.port}{path}"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    subprocess.run([PY_SPY, "record", "--subprocesses", "--nonblocking", "-r", "250",
                    "-d", f"{seconds:g}", "-f", "raw", "-o", str(out),
                    "--pid", str(server.procs[0].proc.pid)],  # type: ignore[union-attr]
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    text = wrk.communicate()[0]
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    return float(m.group(1)) if m else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    """Profile each server on one test; print the layers and the top functions."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test", default="queries", choices=sorted(run.TESTS))
    parser.add_argument("--servers", default="webmini-router,bottle")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--top", type=int, default=12, help="innermost functions to list")
    args = parser.parse_args(argv)
    keys = [k for k in args.servers.split(",") if k]
    for key in keys:
        if key not in run.SERVERS:
            parser.error(f"unknown server {key!r}: {', '.join(run.SERVERS)}")
    test = run.TESTS[args.test]
    runner = run.mariadb_runner()
    db = runner.start_mariadb()
    try:
        url = load_into(db)
        workdir = Path(tempfile.mkdtemp(prefix="webmini-tfb-profile-"))
        for key in keys:
            server = run.SERVERS[key](workdir, {"TFB_DATABASE_URL": url}).start()
            try:
                rps = profile(server, test.path, args.conns, args.seconds, workdir / f"{key}.txt")
            finally:
                server.stop()
            total, layers, functions = split((workdir / f"{key}.txt").read_text())
            print(f"{server.name}, {test.path}, c={args.conns}: {rps:,.0f} req/s, "
                  f"{total} worker samples")
            for name, n in layers.most_common():
                print(f"  {name:<20} {100 * n / total:5.1f}%")
            print("  innermost functions:")
            for name, n in functions.most_common(args.top):
                print(f"    {100 * n / total:5.1f}%  {name}")
    finally:
        db.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
