"""Cost of the per-request screen (path bound, Host check) against the check it replaced.

    .venv/bin/python benchmarks/host_check.py

Before it, ``application.__call__`` read PATH_INFO and tested ``isascii()``;
now :func:`webmini.request.screen` also bounds the path and checks the Host
(a dict lookup once a Host value has passed). Best of 15 rounds of 200,000
calls each, in one process, for each form of ``allowed_hosts``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from webmini.config import config  # noqa: E402
from webmini.request import screen  # noqa: E402

ENV = {"PATH_INFO": "/users/42/posts/7", "HTTP_HOST": "127.0.0.1:8080", "REMOTE_ADDR": "127.0.0.1"}


def before(environ: dict[str, Any]) -> str:
    """What the entry point did before: PATH_INFO and an ASCII test."""
    path: str = environ.get("PATH_INFO") or "/"
    if not path.isascii():
        raise AssertionError
    return path


def best_ns(func: Callable[[dict[str, Any]], str], calls: int = 200_000) -> float:
    """Best time per call over 15 rounds, in nanoseconds."""
    best = float("inf")
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(calls):
            func(ENV)
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e9


def main() -> None:
    """Print one line per allowed_hosts form."""
    forms: list[tuple[str, Any]] = [("unset", ""), ("tuple", (".example.com", "127.0.0.1")),
                                    ("list", [".example.com", "127.0.0.1"])]
    for label, setting in forms:
        config.allowed_hosts = setting
        old, new = best_ns(before), best_ns(screen)
        print(f"allowed_hosts {label:5}: before {old:5.0f} ns, screen {new:5.0f} ns, "
              f"+{new - old:4.0f} ns per request")


if __name__ == "__main__":
    main()
