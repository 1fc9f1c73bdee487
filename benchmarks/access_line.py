"""CPU of webmini's access line per request, in-process, each request in its own greenlet.

uWSGI's gevent loop runs every request in a new greenlet; under gevent's
patched ``threading`` a log record made there asks ``current_thread()``,
which builds a DummyThread for that greenlet. This measures a one-route JSON
app through ``app.wsgifunc()`` with the access line on and off, logging set
up by :func:`webmini.logs.configure` (the set-up a uWSGI worker gets),
stderr sent to /dev/null; and with ``logging.logThreads`` turned back on, to
show what :func:`~webmini.logs.configure` saves by turning it off::

    .venv/bin/python benchmarks/access_line.py
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

import webmini as web  # noqa: E402
from webmini import logs  # noqa: E402
from webmini.config import config  # noqa: E402

REQUESTS = 20_000
BATCH = 100  # greenlets alive at once
ROUNDS = 5


class Json:
    """The one route."""

    def GET(self) -> dict[str, str]:
        return {"message": "Hello, World!"}


def main() -> None:
    """Print µs per request for each setting, best of ROUNDS interleaved rounds."""
    out = sys.stdout
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the log handler's stream, for the whole run
    wsgi = web.application(("/json", "Json"), {"Json": Json}).wsgifunc()
    logs.configure()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/json", "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "bench", "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "wrk", "wsgi.url_scheme": "http",
    }

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    def one() -> None:
        body = wsgi(dict(environ), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    def measure() -> float:
        t0 = time.process_time()
        for _ in range(REQUESTS // BATCH):
            gevent.joinall([gevent.spawn(one) for _ in range(BATCH)])
        return (time.process_time() - t0) / REQUESTS * 1e6

    settings = {
        "access line off": (False, False),
        "access line on (configure(): logThreads off)": (True, False),
        "access line on, logging.logThreads on": (True, True),
    }
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(ROUNDS):
        for name, (access, threads) in settings.items():
            config["access_log"] = access
            logging.logThreads = threads
            best[name] = min(best[name], measure())
    print(f"Python {sys.version.split()[0]}, {REQUESTS:,} requests x {ROUNDS} rounds, best round",
          file=out)
    for name, us in best.items():
        print(f"  {name:48s} {us:5.1f} µs/request", file=out)


if __name__ == "__main__":
    main()
