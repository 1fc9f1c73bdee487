"""The uWSGI adapter: every hook webmini sets in uWSGI's ``uwsgi`` module, in one place.

Outside uWSGI (the dev server, tests) the ``uwsgi`` module cannot be
imported: each function then does the plain-process equivalent. Hooks are
chained, never replaced, so the application's own ``uwsgi.post_fork_hook``
or ``uwsgi.atexit`` still runs. (The WebSocket handshake's use of
``uwsgi.websocket_handshake`` stays with the WebSocket backends.)
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any


def module() -> ModuleType | None:
    """Return uWSGI's ``uwsgi`` module inside a uWSGI process, else None."""
    try:
        import uwsgi  # built into the uWSGI binary: importable nowhere else
    except ImportError:
        return None
    return uwsgi


def worker_id() -> int:
    """Return this process's worker id: uWSGI's (0 in the master), else gunicorn's, else 0.

    Under gunicorn, webmini.serving.gunicorn_conf numbers the workers 1..N
    (``WEBMINI_WORKER_ID``), as uWSGI does.
    """
    uwsgi = module()
    if uwsgi is not None:
        return int(uwsgi.worker_id())
    value = os.environ.get("WEBMINI_WORKER_ID", "")
    return int(value) if value.isdigit() else 0


def in_every_worker(func: Callable[[], Any]) -> None:
    """Run ``func()`` in each uWSGI worker, or now outside uWSGI.

    Already in a worker (``lazy-apps``): now; in the master: after each fork.
    """
    uwsgi: Any = module()
    if uwsgi is None or uwsgi.worker_id() > 0:
        func()
        return
    previous = getattr(uwsgi, "post_fork_hook", None)

    def after_fork() -> None:
        if previous is not None:
            previous()
        if uwsgi.worker_id() > 0:
            func()

    uwsgi.post_fork_hook = after_fork


def at_exit(func: Callable[[], Any]) -> None:
    """Run ``func()`` when this worker (or, outside uWSGI, this process) exits."""
    uwsgi: Any = module()
    if uwsgi is None:
        atexit.register(func)
        return
    previous = getattr(uwsgi, "atexit", None)

    def at_worker_exit() -> None:
        func()
        if previous is not None:
            previous()

    uwsgi.atexit = at_worker_exit
