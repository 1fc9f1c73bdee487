"""Run the hostile-request suite (localservices/hostile.py) against webmini's servers and peers; print a table.

Servers, each serving tests/hostile_app.py on a free loopback port:

* ``webmini run``     the dev server (strict heads via h11);
* ``nginx->uWSGI``    uwsgi.ini behind examples/nginx.conf (the shipped shape);
* ``uWSGI http``      uwsgi.ini's own http-socket (loopback only by config);
* ``gunicorn``        gunicorn's sync worker, its defaults;
* ``gevent.pywsgi``   a bare ``gevent.pywsgi.WSGIServer``.

Each cell counts the cases where the server did what the case expects
(``reject``: a 4xx or a close; ``ok``: served; ``any``: no 5xx); the lines
under the table list, per server, the cases that went otherwise
(5xx = a 5xx or a reply that is not HTTP; hang = no answer in 6 s;
accepted = a 2xx where a 4xx was due; smuggled = a hidden request ran).

Usage::

    .venv/bin/python benchmarks/hostile_table.py            # about 3 minutes
    .venv/bin/python benchmarks/hostile_table.py --only gunicorn,webmini
    # how often an early 413 reaches the client through nginx -> uWSGI (vs a 502):
    .venv/bin/python benchmarks/hostile_table.py --only nginx --cases "upload over the limit" \
        --repeat 30 [--uwsgi-args "--post-buffering 65536"]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path[:0] = [str(ROOT), str(TESTS)]  # localservices/; hostile_app.py

from localservices import free_port, hostile  # noqa: E402
from localservices.nginx import NginxServer  # noqa: E402
from localservices.uwsgi import UwsgiServer  # noqa: E402

PY = sys.executable
BIN = Path(PY).parent
ENV = dict(os.environ, PYTHONPATH=f"{TESTS}:{ROOT}")

PYWSGI = """
from gevent import monkey; monkey.patch_all()
import sys
from gevent.pywsgi import WSGIServer
from hostile_app import application
WSGIServer(("127.0.0.1", int(sys.argv[1])), application, log=None).serve_forever()
"""


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        if hostile.alive("127.0.0.1", port, timeout=1.0):
            return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


@contextlib.contextmanager
def _process(cmd: list[str], port: int, log: Path) -> Iterator[int]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                cwd=tempfile.gettempdir(), start_new_session=True)
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


UWSGI_ARGS: list[str] = []


@contextlib.contextmanager
def serve(name: str, tmp: Path) -> Iterator[int]:
    """Start server ``name``; yield its port; stop it."""
    port = free_port()
    if name == "webmini run":
        with _process([PY, "-m", "webmini.cli", "run", "hostile_app:application", "--port", str(port),
                       "--header-timeout", "2", "--read-timeout", "3"], port, tmp / "dev.log") as p:
            yield p
    elif name == "gunicorn":
        with _process([str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "2",
                       "hostile_app:application"], port, tmp / "gunicorn.log") as p:
            yield p
    elif name == "gevent.pywsgi":
        with _process([PY, "-c", PYWSGI, str(port)], port, tmp / "pywsgi.log") as p:
            yield p
    else:
        uwsgi = UwsgiServer(tmp / "uwsgi", module="hostile_app:application", processes=2,
                            env={"PYTHONPATH": str(TESTS)}, args=UWSGI_ARGS)
        uwsgi.start()
        try:
            if name == "uWSGI http":
                yield uwsgi.http_port
            else:
                (tmp / "nginx").mkdir()
                nginx = NginxServer(tmp / "nginx", uwsgi.socket_address)
                nginx.start()
                try:
                    yield nginx.port
                finally:
                    nginx.stop()
        finally:
            uwsgi.stop()


SERVERS = ["webmini run", "nginx->uWSGI", "uWSGI http", "gunicorn", "gevent.pywsgi"]


def run(name: str) -> dict[str, list[tuple[hostile.Case, str, str]]]:
    """Play every case against server ``name``: {group: [(case, verdict, summary)]}."""
    out: dict[str, list[tuple[hostile.Case, str, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp, serve(name, Path(tmp)) as port:
        for case in hostile.CASES:
            outcome = hostile.play("127.0.0.1", port, case)
            verdict = outcome.verdict(case)
            if not hostile.alive("127.0.0.1", port):
                verdict = "died"
                time.sleep(1.0)
            out.setdefault(case.group, []).append((case, verdict, outcome.summary()))
    return out


def main() -> int:
    """Run the servers one after the other, print the table and the exceptions."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated server names (substring match)")
    parser.add_argument("--cases", help="only these cases, by name, separated by |")
    parser.add_argument("--repeat", type=int, default=1, help="play each case this many times")
    parser.add_argument("--uwsgi-args", default="", help="extra uWSGI options (e.g. post-buffering)")
    args = parser.parse_args()
    UWSGI_ARGS.extend(args.uwsgi_args.split())
    servers = [s for s in SERVERS if not args.only or any(o in s for o in args.only.split(","))]
    if args.cases:
        wanted = set(args.cases.split("|"))
        hostile.CASES[:] = [c for c in hostile.CASES if c.name in wanted] * args.repeat
        for name in servers:
            outcomes = Counter((case.name, summary) for rows in run(name).values()
                               for case, _, summary in rows)
            for (case_name, summary), n in sorted(outcomes.items()):
                print(f"{name}: {case_name}: {summary} x{n}")
        return 0
    results = {}
    for name in servers:
        started = time.monotonic()
        results[name] = run(name)
        print(f"# {name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(f"{len(hostile.CASES)} cases; cell = cases handled as expected / cases in the group\n")
    print("| group | " + " | ".join(servers) + " |")
    print("|---|" + "---|" * len(servers))
    for group in hostile.GROUPS:
        cells = []
        for name in servers:
            rows = results[name][group]
            cells.append(f"{sum(v == 'pass' for _, v, _ in rows)}/{len(rows)}")
        print(f"| {group} | " + " | ".join(cells) + " |")
    totals = []
    for name in servers:
        rows = [r for g in results[name].values() for r in g]
        totals.append(f"**{sum(v == 'pass' for _, v, _ in rows)}/{len(rows)}**")
    print("| **all** | " + " | ".join(totals) + " |")
    kinds = []
    for name in servers:
        counts = Counter(v for g in results[name].values() for _, v, _ in g if v != "pass")
        kinds.append(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "-")
    print("| otherwise | " + " | ".join(kinds) + " |")
    print()
    for name in servers:
        bad = [(c, v, s) for g in results[name].values() for c, v, s in g if v != "pass"]
        if bad:
            print(f"{name}: " + "; ".join(f"{c.name} ({v}: {s})" for c, v, s in bad))
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
