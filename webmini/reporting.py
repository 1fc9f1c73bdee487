"""Unhandled exceptions: logged once, handed to the error reporters, optionally propagated.

Every exception a handler, a streamed body or a WebSocket event lets escape
goes through :func:`unhandled`: it is logged (with its traceback), stored on
the WSGI environ as ``environ["webmini.exception"]`` (a request's or a
streamed body's, for middleware around the app), and each callable of
``web.config.error_reporters`` is called as ``reporter(exc_info, ctx, stage)``
with ``stage`` one of ``"request"``, ``"stream"`` and ``"websocket"`` (what
Flask's ``got_request_exception`` signal gives Sentry and the like). With
``web.config.propagate_exceptions`` on, a request's exception is then raised
out of the application instead of becoming the 500 answer (Flask's
``PROPAGATE_EXCEPTIONS``), for tests and APM middleware around the app.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from webmini.config import config

if TYPE_CHECKING:
    from webmini.ctx import RequestContext

__all__ = ["ENVIRON_KEY", "ErrorReporter", "add_error_reporter", "remove_error_reporter",
           "unhandled"]

log = logging.getLogger("webmini.app")

#: The environ key holding the unhandled exception of the request, once there is one.
ENVIRON_KEY = "webmini.exception"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
#: ``reporter(exc_info, ctx, stage)``; its own exceptions are logged, never raised.
ErrorReporter = Callable[[ExcInfo, "RequestContext", str], Any]

_MESSAGES = {
    "request": "unhandled error in %s %s",
    "stream": "error while streaming the response to %s %s",
    "websocket": "error in a WebSocket handler of %s %s",
}


def add_error_reporter(reporter: ErrorReporter) -> None:
    """Add ``reporter`` to ``web.config.error_reporters`` (once, however often called)."""
    reporters = config.get("error_reporters")
    if reporters is None:
        reporters = config.error_reporters = []
    if reporter not in reporters:
        reporters.append(reporter)


def remove_error_reporter(reporter: ErrorReporter) -> None:
    """Remove ``reporter`` from ``web.config.error_reporters`` if it is there."""
    reporters = config.get("error_reporters") or []
    if reporter in reporters:
        reporters.remove(reporter)


def unhandled(c: RequestContext, stage: str = "request", where: str | None = None) -> ExcInfo:
    """Log and report the exception being handled; re-raise it when propagating.

    Call it from an ``except`` block. An exception already reported for this
    request (seen again on its way out) is neither logged nor reported twice.
    ``where`` replaces the method and path in the log line.
    """
    exc_info: Any = sys.exc_info()
    exc = exc_info[1]
    env = c.env
    if env.get(ENVIRON_KEY) is not exc:
        if stage != "websocket":  # a connection's event: no WSGI environ to tell any more
            env[ENVIRON_KEY] = exc
        # The reporters first, then the log line (Flask's order): an SDK that
        # also turns error log records into events then drops that copy as a
        # duplicate of the richer event its reporter sent.
        for reporter in tuple(config.get("error_reporters") or ()):
            try:
                reporter(exc_info, c, stage)
            except Exception:  # a reporter must never change the answer
                log.exception("error reporter %r failed", reporter)
        if where is None:
            log.error(_MESSAGES.get(stage, "%s %s"), c.method, c.path, exc_info=exc_info)
        else:
            log.error("%s", where, exc_info=exc_info)
    if stage == "request" and config.get("propagate_exceptions"):
        raise  # noqa: PLE0704 - always called while an exception is handled
    return exc_info  # type: ignore[no-any-return]
