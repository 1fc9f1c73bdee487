"""The builtin dev server on ``gevent.pywsgi`` behind ``webmini run`` and ``app.run()``.

Importing this module changes nothing: :func:`make_server` (and so
:func:`serve` and :func:`run_server`) patches the standard library for
gevent first (a no-op when ``webmini run``, uWSGI or a test runner patched
already), then loads the handler from :mod:`webmini.serving.pywsgi_handler`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from webmini.config import config
from webmini.serving import green
from webmini.serving.reloader import LISTEN_FD_ENV, WORKERS_ENV, announce, listen, ready

if TYPE_CHECKING:
    from webmini.serving.pywsgi_handler import DevHandler, DevServer

__all__ = [
    "DevHandler", "DevServer", "announce", "listen", "make_server", "rerun_patched", "run_server",
    "serve",
]

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _handler_module() -> Any:
    # The dev server is gevent's: patch before gevent.pywsgi pulls in
    # http.client and ssl.
    green.patch()
    from webmini.serving import pywsgi_handler

    return pywsgi_handler


def __getattr__(name: str) -> Any:
    # DevHandler and DevServer load (and patch) on first use, never at import.
    if name in ("DevHandler", "DevServer"):
        return getattr(_handler_module(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_server(
    app: WSGIApp,
    listener: Any = ("127.0.0.1", 0),
    **options: Any,
) -> DevServer:
    """Return a :class:`DevServer` for ``app`` on ``listener`` (an address or a socket).

    ``options``: ``pool_size``, ``keepalive_timeout``, ``header_timeout``,
    ``read_timeout``, ``max_header_size``, ``graceful_timeout``, ``environ``. Call ``.start()`` or
    ``.serve_forever()``; ``.server_port`` tells the bound port.
    """
    environ = dict(options.pop("environ", None) or {})
    if isinstance(listener, tuple):
        environ.setdefault("SERVER_NAME", str(listener[0]))  # avoids a reverse DNS lookup
    elif isinstance(listener, socket.socket):
        environ.setdefault("SERVER_NAME", str(listener.getsockname()[0]))
    server: DevServer = _handler_module().DevServer(listener, app, environ=environ, **options)
    return server


def serve(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    workers: int = 1,
    reload: bool = False,
    reload_dirs: list[str] | None = None,
    debug: bool | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` on ``host:port`` until interrupted (``application.run()`` calls this).

    ``workers > 1`` pre-forks that many processes sharing the listening
    socket; ``reload=True`` restarts them when a Python file under
    ``reload_dirs`` (default: the current directory) changes. Both re-run
    the current command line in child processes. ``debug`` sets
    ``webmini.config.debug`` (HTML debug pages, event-loop monitor).
    ``options`` go to :func:`make_server`.
    """
    green.patch()  # before the listening socket is made: it must be gevent's
    if debug is not None:
        config.debug = debug
    if reload:
        config.reload = True
    from webmini import logs

    logs.configure()  # unless the app configured logging itself
    if config.debug:
        # SECURITY: debug pages show source, locals and the request to anyone
        # who triggers an error: say so loudly, louder still off loopback.
        where = "" if host in ("127.0.0.1", "localhost", "::1") else (
            f" and {host} is not loopback: anyone who can reach it sees them")
        print(f"webmini: WARNING: debug mode: error pages show source code, local variables "
              f"and request data{where}. Never use --debug in production.",
              file=sys.stderr, flush=True)
    inherited = os.environ.get(LISTEN_FD_ENV)
    if inherited is None and (reload or workers > 1):
        from webmini.serving.reloader import supervise

        sock = listen(host, port)
        announce(sock)
        supervise(sock, workers=workers, reload=reload, reload_dirs=reload_dirs)
        return
    if inherited is not None:
        sock = socket.socket(fileno=int(inherited))
        os.environ.pop(LISTEN_FD_ENV, None)
    else:
        sock = listen(host, port)
        announce(sock)
    run_server(app, sock, **options)


def rerun_patched(depth: int = 2) -> None:
    """Run this program again with gevent patching first, when its main module was unpatched.

    ``python app.py`` imports the app module before ``app.run()`` could patch:
    ``from time import sleep`` or ``import threading`` at its top keep the
    blocking versions and requests would be served one at a time. So when
    ``app.run()`` is called from the ``__main__`` module (the frame ``depth``
    levels up) of an unpatched process, this replaces the process (same pid,
    same arguments) with one that patches first and then runs the script or
    module as ``__main__`` again, as ``webmini run`` patches before it imports
    the app. The script's top level runs again there. Returns when there is
    nothing to do (already patched, or not called from ``__main__``).
    """
    if green.is_patched():
        return
    main = sys.modules.get("__main__")
    caller = sys._getframe(depth).f_globals
    if main is None or caller is not vars(main):
        return  # app.run() from an imported module or a test: patched late, with warnings
    spec = getattr(main, "__spec__", None)
    path = getattr(main, "__file__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        kind, target = "module", spec.name  # python -m package.app
    elif path:
        kind, target = "path", os.path.abspath(path)
    else:
        return  # an interactive session
    code = f"from webmini.serving.devserver import _rerun_main; _rerun_main({kind!r}, {target!r})"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-c", code, *sys.argv[1:]])


def _rerun_main(kind: str, target: str) -> None:
    """The re-run of :func:`rerun_patched`: patch, then run ``target`` as ``__main__``."""
    import runpy

    green.patch()
    if kind == "module":
        sys.argv[0] = target
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv[0] = target
        sys.path[0] = os.path.dirname(target)  # as `python path/to/app.py` puts it
        runpy.run_path(target, run_name="__main__")


def run_server(app: WSGIApp, sock: socket.socket, **options: Any) -> None:
    """Serve ``app`` on the listening ``sock`` in this process until SIGTERM or SIGINT."""
    environ = dict(options.pop("environ", None) or {})
    if int(os.environ.get(WORKERS_ENV, "1")) > 1:
        environ["wsgi.multiprocess"] = True  # pywsgi then accepts one connection at a time
    server = make_server(app, sock, environ=environ, **options)
    green.startup_check(debug=bool(config.debug))
    import gevent  # patched and imported by make_server
    import gevent.event

    stopped = gevent.event.Event()

    def graceful() -> None:
        try:
            server.graceful_stop()
        finally:
            stopped.set()

    # SIGTERM: a graceful stop, bounded by graceful_timeout (uWSGI's mercy).
    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(graceful))
    started = time.monotonic()
    server.start()
    ready()  # a reload's supervisor now stops the children this one replaces
    try:
        stopped.wait()
    except KeyboardInterrupt:
        server.stop()
    finally:
        from webmini.logs import flush

        flush()  # the access lines still waiting for their batch
        log.info("stopped after %.1f s", time.monotonic() - started)
