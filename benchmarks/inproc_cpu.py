"""CPU time per request of webmini's in-process scenarios, for before/after comparisons.

``inproc.py`` measures wall-clock rates, which a loaded machine skews by
10% and more from one run to the next. This script times the same scenarios
(same app, same fresh environ per request) with ``time.thread_time()``, the
CPU time of the measuring thread only, and keeps the best of many short
batches: steady within a few percent under load. To compare two trees, run
each in turn, alternating, and compare the best figures::

    .venv/bin/python benchmarks/inproc_cpu.py [ROOT] [--batches 15]

ROOT is the checkout whose ``webmini`` and ``benchmarks/apps_inproc`` are
timed (default: this one). Prints one JSON object: scenario -> ns/request.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from typing import Any


def main() -> None:
    """Time every scenario of inproc.py in CPU nanoseconds per request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?",
                        default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--requests", type=int, default=5000, help="requests per batch")
    args = parser.parse_args()
    sys.path[:0] = [os.path.join(args.root, "benchmarks"), args.root]
    import inproc  # the chosen tree's, after the path change

    app = inproc.load_app("webmini")

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    out: dict[str, float] = {}
    for scenario in inproc.SCENARIOS:
        template = inproc.scenario_environ(scenario)
        best = float("inf")
        for _ in range(args.batches):
            start = time.thread_time()
            for _ in range(args.requests):
                env = dict(template)
                env["wsgi.input"] = io.BytesIO()
                b"".join(app(env, start_response))
            best = min(best, (time.thread_time() - start) / args.requests)
        out[scenario] = round(best * 1e9)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
