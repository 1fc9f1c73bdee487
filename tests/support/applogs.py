"""What the tests of an app's log lines under real servers share: an app that logs and
fails, the time stamp of a log line, a log poll, uWSGI or gunicorn serving a module."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from localservices import wait_until
from localservices.gunicorn import GunicornServer
from localservices.uwsgi import UwsgiServer

#: An app module's start: ``/hello`` logs to "myapp" at INFO, ``/boom`` raises.
#: The module ends by defining the WSGI callable from ``Hello`` and ``Boom``.
LOGGING_HANDLERS = """
import logging
import webmini as web

log = logging.getLogger("myapp")


class Hello:
    def GET(self):
        log.info("saying hello to %s", web.input(x="?").x)
        return "hello"


class Boom:
    def GET(self):
        raise RuntimeError("kaboom")

"""

#: The time stamp opening every line of webmini's logging set-up.
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def wait_for_line(read: Callable[[], str], pattern: str, timeout: float = 10.0) -> re.Match[str]:
    """Poll ``read()`` (a log's text) until ``pattern`` matches a line; fail with the log's end."""
    found: list[re.Match[str]] = []

    def seen() -> bool:
        match = re.search(pattern, read(), re.M)
        if match:
            found.append(match)
        return match is not None

    if not wait_until(seen, timeout, interval=0.1):
        raise AssertionError(f"{pattern!r} not in log:\n{read()[-3000:]}")
    return found[0]


@contextmanager
def logged_server(kind: str, workdir: Path, module: str) -> Iterator[tuple[int, Callable[[], str]]]:
    """Serve ``module`` (``"mod:attr"``) with one worker of ``kind`` ("uwsgi", with uwsgi.ini,
    or "gunicorn", with gunicorn_conf); yield (port, a reader of its log); stop it after."""
    if kind == "uwsgi":
        uwsgi = UwsgiServer(workdir, module=module, processes=1).start()
        server: UwsgiServer | GunicornServer = uwsgi
        port, read = uwsgi.http_port, lambda: uwsgi.log_path.read_text(errors="replace")
    else:
        gunicorn = GunicornServer(workdir, module, processes=1).start()
        server = gunicorn
        port, read = gunicorn.port, gunicorn.log_tail
    try:
        yield port, read
    finally:
        server.stop()
