"""gunicorn's gevent worker, made to serve webmini like uWSGI does.

``gunicorn -c python:webmini.serving.gunicorn_conf myapp:application`` (the
config selects this worker). On top of ``gunicorn -k gevent`` it:

* hands the connection over to a WebSocket after its 101: gunicorn's
  gevent worker (``-k gevent``) parses HTTP itself, not with
  ``gevent.pywsgi``; the environ carries the socket (``gunicorn.socket``),
  and a request whose connection a WebSocket took answers gunicorn with
  ``ALREADY_HANDLED``, so gunicorn writes nothing more to it;
* runs webmini's start-up check (patched? blocking C drivers loaded? the
  hub monitor in debug) in every worker once the app is loaded.

gunicorn patches each worker with gevent after the fork and before the app
is imported (``preload_app`` stays off), the equivalent of uWSGI's
``gevent-early-monkey-patch`` with ``lazy-apps``.
"""

from __future__ import annotations

import os
from typing import Any

try:
    from gunicorn.workers.base_async import ALREADY_HANDLED
    from gunicorn.workers.ggevent import GeventWorker as _GunicornGeventWorker
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    if exc.name not in ("gunicorn", "packaging"):
        raise
    raise ImportError(f"webmini.serving.gunicorn needs {exc.name}: "
                      "pip install webmini[gunicorn]") from None

__all__ = ["GeventWorker"]


class GeventWorker(_GunicornGeventWorker):  # type: ignore[misc]
    """``gunicorn -k gevent`` plus WebSocket hand-over and webmini's start-up check."""

    def is_already_handled(self, respiter: Any) -> bool:
        """End the connection's request loop once a WebSocket took it over.

        gunicorn's keep-alive loop ignores handle_request's result and would
        go on parsing (stealing) the WebSocket's frames; StopIteration is the
        way out it provides: the worker then closes its descriptor only.
        """
        if respiter is ALREADY_HANDLED:
            raise StopIteration
        return False

    def load_wsgi(self) -> None:
        """Load the app, then wrap it so upgraded connections are left alone."""
        super().load_wsgi()
        app: Any = getattr(self, "wsgi")  # noqa: B009 - set by gunicorn, untyped

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            environ["webmini.gunicorn"] = True
            result = app(environ, start_response)
            if environ.get("webmini.upgraded"):
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                return ALREADY_HANDLED
            return result

        self.wsgi = wsgi
        from webmini import logs
        from webmini.serving.green import startup_check

        logs.configure()  # root logging with time, level, pid, worker; unless the app did

        startup_check()
        self.log.info("webmini: worker %s (pid %d) ready",
                      os.environ.get("WEBMINI_WORKER_ID", "?"), os.getpid())
