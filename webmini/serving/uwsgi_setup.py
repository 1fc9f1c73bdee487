"""What a uWSGI or gunicorn worker sets up when it loads the app: logging and the start-up audit.

``app.wsgifunc()`` calls :func:`setup_workers` under uWSGI and gunicorn,
whatever their configuration: with webmini's own (uwsgi.ini, gunicorn_conf)
as with a plain ``gunicorn app:application`` or ``uwsgi --gevent 100 ...``,
where nothing else would set up logging (app lines and access lines would
vanish) or say that gevent never patched the process.
"""

from __future__ import annotations

import sys
from typing import Any

from webmini import logs
from webmini.serving.green import startup_check
from webmini.serving.uwsgi import in_every_worker, module
from webmini.serving.uwsgi_guard import check_http_sockets

__all__ = ["refuse_public_http", "setup_workers", "startup_check_in_workers"]


def setup_workers() -> None:
    """Python logging (unless the app set it up) and the start-up audit, once per worker."""
    if module() is None and "webmini.serving.gunicorn" in sys.modules:
        return  # webmini's gunicorn worker sets up both once the app is loaded
    logs.configure()
    startup_check_in_workers()


def refuse_public_http() -> None:
    """Under uWSGI: raise RuntimeError when an HTTP socket is reachable beyond this host."""
    uwsgi: Any = module()
    if uwsgi is not None:
        # SECURITY: refuse to serve with uWSGI's lenient HTTP parser off loopback.
        check_http_sockets(uwsgi.opt)


def startup_check_in_workers() -> None:
    """Run the gevent start-up audit (:func:`webmini.serving.green.startup_check`) per worker."""
    refuse_public_http()
    in_every_worker(startup_check)
