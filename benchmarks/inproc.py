"""In-process WSGI benchmark: webmini against web.py, Flask, Bottle and Falcon.

Every framework serves the same small API (see ``apps_inproc/``): 20 filler
regex routes that never match, then ``GET /`` (static), ``GET /search?...``
(query parsing), ``GET /json`` (a small dict as JSON) and
``GET /users/42/posts/7`` (two path parameters, last in the table).

Each request gets a fresh PEP 3333 environ (a new dict, a new ``BytesIO`` as
``wsgi.input``), as a server would build it; the body is fully consumed and
``close()`` called when present. Before timing, every framework's status and
body are checked to be the same. Timing runs several interleaved rounds of
fixed-duration batches per (framework, scenario) and keeps the best (or the
median) rate.

Usage::

    .venv/bin/python benchmarks/inproc.py [--quick] [--json out.json]
    .venv/bin/python benchmarks/inproc.py --profile 50000   # cProfile webmini
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import importlib.metadata
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from apps_inproc.common import INDEX_BODY, JSON_DOC, search_body, user_post_body  # noqa: E402

WsgiApp = Callable[..., Iterable[bytes]]

# name -> (module in apps_inproc, distribution name for the version)
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "webmini": ("webmini_app", "webmini"),
    "falcon": ("falcon_app", "falcon"),
    "bottle": ("bottle_app", "bottle"),
    "flask": ("flask_app", "flask"),
    "web.py": ("webpy_app", "web.py"),
}

# name -> (PATH_INFO, QUERY_STRING, expected body, body is JSON)
SCENARIOS: dict[str, tuple[str, str, bytes, bool]] = {
    "static GET /": ("/", "", INDEX_BODY.encode(), False),
    "param GET /users/42/posts/7": ("/users/42/posts/7", "", user_post_body(42, 7).encode(), False),
    "query GET /search?q=gevent&page=3&lang=zh": (
        "/search",
        "q=gevent&page=3&lang=zh",
        search_body("gevent", 3, "zh").encode(),
        False,
    ),
    "json GET /json": ("/json", "", json.dumps(JSON_DOC).encode(), True),
}

# What a server such as gunicorn or gevent.pywsgi puts in the environ of a
# plain GET; PATH_INFO, QUERY_STRING and wsgi.input are set per scenario/request.
BASE_ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "127.0.0.1:8080",
    "HTTP_USER_AGENT": "wrk",
    "HTTP_ACCEPT": "*/*",
    "HTTP_CONNECTION": "keep-alive",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}


def scenario_environ(scenario: str) -> dict[str, Any]:
    """Return the environ template of ``scenario`` (without ``wsgi.input``)."""
    path, query, _, _ = SCENARIOS[scenario]
    env = dict(BASE_ENVIRON)
    env["PATH_INFO"] = path
    env["QUERY_STRING"] = query
    return env


def load_app(name: str) -> WsgiApp:
    """Import the benchmark app of framework ``name`` and return its WSGI callable."""
    module_name = FRAMEWORKS[name][0]
    with warnings.catch_warnings():
        # web.py 0.76 warns on import and at app creation; silence it.
        warnings.simplefilter("ignore")
        module = importlib.import_module(f"apps_inproc.{module_name}")
        app: WsgiApp = module.make_app()
    return app


def version(name: str) -> str:
    """Return the installed version of framework ``name``."""
    try:
        return importlib.metadata.version(FRAMEWORKS[name][1])
    except importlib.metadata.PackageNotFoundError:
        return "?"


def call_once(app: WsgiApp, template: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Serve one request, returning status, headers and the whole body."""
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"] = status
        seen["headers"] = headers
        return lambda data: None

    env = dict(template)
    env["wsgi.input"] = io.BytesIO()
    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen["status"], seen["headers"], body


def _content_type(headers: list[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.lower() == "content-type":
            return value
    return ""


def check_same_responses(apps: dict[str, WsgiApp]) -> None:
    """Assert every framework answers every scenario with 200 and the same body."""
    for scenario, (_, _, expected, is_json) in SCENARIOS.items():
        template = scenario_environ(scenario)
        for name, app in apps.items():
            status, headers, body = call_once(app, template)
            where = f"{name} on {scenario!r}"
            assert status.startswith("200 "), f"{where}: status {status!r}"
            if is_json:
                # Separators, key order and a trailing newline differ between the
                # frameworks' JSON encoders; the document must be the same.
                assert json.loads(body) == json.loads(expected), f"{where}: body {body!r}"
                ctype = _content_type(headers)
                assert ctype.startswith("application/json"), f"{where}: type {ctype!r}"
            else:
                assert body == expected, f"{where}: body {body!r} != {expected!r}"


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return _write


def _write(data: bytes) -> None:
    return None


def run_batch(app: WsgiApp, template: dict[str, Any], n: int) -> float:
    """Serve ``n`` requests; return the elapsed seconds."""
    # PERF: the loop is the same for every framework; its own cost (building
    # the environ, consuming the body) is measured as "harness" in the report.
    start_response = _start_response
    new_input = io.BytesIO
    copy = dict
    get = getattr
    t0 = time.perf_counter()
    for _ in range(n):
        env = copy(template)
        env["wsgi.input"] = new_input()
        result = app(env, start_response)
        for _chunk in result:
            pass
        close = get(result, "close", None)
        if close is not None:
            close()
    return time.perf_counter() - t0


def null_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The cheapest WSGI app, to measure the harness loop itself."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def calibrate(app: WsgiApp, template: dict[str, Any], batch_seconds: float) -> int:
    """Return an iteration count that makes a batch last about ``batch_seconds``."""
    n = 50
    while True:
        elapsed = run_batch(app, template, n)
        if elapsed >= 0.05:
            break
        n *= 4
    return max(50, int(n * batch_seconds / elapsed))


def measure(
    apps: dict[str, WsgiApp], rounds: int, batch_seconds: float
) -> dict[str, dict[str, list[float]]]:
    """Return req/s of every round, per scenario and framework, in interleaved rounds."""
    templates = {s: scenario_environ(s) for s in SCENARIOS}
    counts = {
        (s, name): calibrate(app, templates[s], batch_seconds)
        for s in SCENARIOS
        for name, app in apps.items()
    }
    rates: dict[str, dict[str, list[float]]] = {s: {n: [] for n in apps} for s in SCENARIOS}
    names = list(apps)
    for r in range(rounds):
        # Rotate the order each round so no framework always runs right after another.
        order = names[r % len(names):] + names[: r % len(names)]
        for s in SCENARIOS:
            for name in order:
                n = counts[(s, name)]
                gc.collect()
                elapsed = run_batch(apps[name], templates[s], n)
                rates[s][name].append(n / elapsed)
    return rates


def summarise(values: list[float], stat: str) -> float:
    """Reduce the per-round rates to one figure."""
    return max(values) if stat == "best" else statistics.median(values)


def markdown_table(summary: dict[str, dict[str, float]], names: list[str]) -> str:
    """Render req/s per scenario and framework, plus webmini's ratios, as markdown."""
    ratio_peers = [p for p in ("falcon", "web.py") if p in names and "webmini" in names]
    head = ["scenario", *names, *(f"webmini/{p}" for p in ratio_peers)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario, row in summary.items():
        cells = [scenario, *(f"{row[n]:,.0f}" for n in names)]
        cells += [f"{row['webmini'] / row[p]:.2f}x" for p in ratio_peers]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def profile_webmini(requests: int, top: int) -> None:
    """Profile webmini over ``requests`` requests of each scenario; print the top costs."""
    app = load_app("webmini")
    check_same_responses({"webmini": app})
    for scenario in SCENARIOS:
        template = scenario_environ(scenario)
        run_batch(app, template, 1000)
        profiler = cProfile.Profile()
        profiler.enable()
        run_batch(app, template, requests)
        profiler.disable()
        print(f"\n## {scenario}: {requests} requests")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 short rounds (a few seconds)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7, quick 3)")
    parser.add_argument("--batch", type=float, help="seconds per batch (default 0.4, quick 0.1)")
    parser.add_argument("--stat", choices=("best", "median"), default="best")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help="comma-separated subset of: " + ", ".join(FRAMEWORKS))
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="instead of the benchmark, cProfile webmini over N requests each")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    args = parser.parse_args(argv)

    if args.profile:
        profile_webmini(args.profile, args.top)
        return 0

    rounds = args.rounds or (3 if args.quick else 7)
    batch = args.batch or (0.1 if args.quick else 0.4)
    names = [n.strip() for n in args.frameworks.split(",") if n.strip()]
    unknown = [n for n in names if n not in FRAMEWORKS]
    if unknown:
        parser.error(f"unknown frameworks: {', '.join(unknown)}")

    apps = {name: load_app(name) for name in names}
    check_same_responses(apps)
    print("responses checked: same status and body in every framework", file=sys.stderr)

    harness = [n / run_batch(null_app, scenario_environ("static GET /"), n)
               for n in (200_000,) * 3]
    rates = measure(apps, rounds, batch)
    summary = {s: {n: summarise(v, args.stat) for n, v in per.items()} for s, per in rates.items()}

    print(f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{os.cpu_count()} CPUs; " + ", ".join(f"{n} {version(n)}" for n in names))
    print(f"{rounds} interleaved rounds of ~{batch:g} s per (framework, scenario); "
          f"req/s, {args.stat} round\n")
    print(markdown_table(summary, names))
    print(f"\nharness alone (null WSGI app): {max(harness):,.0f} req/s")

    if args.json:
        doc = {
            "python": platform.python_version(),
            "versions": {n: version(n) for n in names},
            "rounds": rounds,
            "batch_seconds": batch,
            "stat": args.stat,
            "harness_rps": max(harness),
            "rps": summary,
            "per_round": rates,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
