"""The todo example for benchmarks/soak.py, plus a tracemalloc probe in one worker.

``GET /__soak/trace?worker=N&action=start|snapshot`` (loopback benchmark use
only): in uWSGI worker N, ``start`` begins tracemalloc (25 frames) and
``snapshot`` writes a snapshot to ``$WEBMINI_SOAK_TRACE_DIR/worker-N-<k>.snap``.
Another worker answers 409, so the caller retries until it reaches N (new
connections are spread over the workers). Tracing starts late, in one worker
only: the others' RSS stays a clean measure, and a snapshot diff shows what
was allocated after ``start`` and is still alive.
"""

from __future__ import annotations

import os
import tracemalloc
from typing import Any

from examples.todo.app import application as _todo
from webmini.serving.uwsgi import worker_id

_taken = [0]


def application(environ: dict[str, Any], start_response: Any) -> Any:
    """The todo app, or the tracemalloc probe on ``/__soak/trace``."""
    if environ.get("PATH_INFO") != "/__soak/trace":
        return _todo(environ, start_response)
    query = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
    if query.get("worker") != str(worker_id()):
        start_response("409 Conflict", [("Content-Length", "0")])
        return [b""]
    if query.get("action") == "start":
        tracemalloc.start(25)
        text = "started"
    else:
        _taken[0] += 1
        path = os.path.join(os.environ["WEBMINI_SOAK_TRACE_DIR"],
                            f"worker-{worker_id()}-{_taken[0]}.snap")
        tracemalloc.take_snapshot().dump(path)
        text = path
    data = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
