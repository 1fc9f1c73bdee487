"""Time a WSGI app's own call inside a real server worker (the in-worker figures of README.md).

Wraps the app named by ``WEBMINI_TIMED_TARGET`` ("module:attribute"); after
every ``WEBMINI_TIMED_EVERY`` requests (10,000) each worker appends one line,
its pid and the mean microseconds per call, to ``WEBMINI_TIMED_OUT``::

    WEBMINI_TIMED_TARGET=examples.hello:application WEBMINI_TIMED_OUT=/tmp/percall.txt \\
    WEBMINI_MODULE=benchmarks.apps.timed:application WEBMINI_HTTP=127.0.0.1:9000 \\
        .venv/bin/uwsgi --ini uwsgi.ini &
    wrk -t2 -c50 -d10s http://127.0.0.1:9000/ && cat /tmp/percall.txt
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

_module, _, _attr = os.environ["WEBMINI_TIMED_TARGET"].partition(":")
_inner: Callable[..., Iterable[bytes]] = getattr(importlib.import_module(_module), _attr)
_every = int(os.environ.get("WEBMINI_TIMED_EVERY", "10000"))
_out = os.environ.get("WEBMINI_TIMED_OUT", "/tmp/webmini-percall.txt")
_clock = time.perf_counter_ns
_total = 0
_count = 0


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Call the wrapped app and add the time its call took to this worker's total."""
    global _total, _count
    started = _clock()
    result = _inner(environ, start_response)
    _total += _clock() - started
    _count += 1
    if _count == _every:
        with open(_out, "a") as out:
            out.write(f"{os.getpid()} {_total / _count / 1000:.2f} us/call\n")
        _total = _count = 0
    return result
