"""Clean-up at worker exit: close pools so the database sees a goodbye, not a dropped socket.

``on_worker_exit(db.close)`` runs ``db.close()`` once when this process
ends: through ``uwsgi.atexit`` inside uWSGI (chained with any hook already
there: a reload, a recycle after ``max-requests`` or a stop all run it),
through :mod:`atexit` elsewhere (the dev server, scripts). Without it MariaDB
logs "Aborted connection" for every pooled connection of every recycled
worker.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable

__all__ = ["on_worker_exit", "run_exit_hooks"]

log = logging.getLogger("webmini.serving.shutdown")

_hooks: list[Callable[[], object]] = []
_installed_in = 0  # the pid whose exit runs the hooks


def on_worker_exit(func: Callable[[], object]) -> Callable[[], object]:
    """Call ``func()`` when this worker process exits (usable as a decorator)."""
    _install()
    if func not in _hooks:
        _hooks.append(func)
    return func


def run_exit_hooks() -> None:
    """Run the registered hooks now, newest first, once; errors are logged, not raised."""
    hooks = list(reversed(_hooks))
    _hooks.clear()
    for func in hooks:
        try:
            func()
        except Exception:
            log.exception("exit hook %r failed", func)


def _install() -> None:
    global _installed_in
    pid = os.getpid()
    if _installed_in == pid:
        return
    if _installed_in:
        _hooks.clear()  # a forked child: the parent's hooks hold the parent's sockets
    _installed_in = pid
    atexit.register(run_exit_hooks)
    try:
        import uwsgi
    except ImportError:
        return
    previous = getattr(uwsgi, "atexit", None)

    def at_worker_exit() -> None:
        run_exit_hooks()
        if previous is not None:
            previous()

    uwsgi.atexit = at_worker_exit
