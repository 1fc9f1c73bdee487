"""Per-request time limits with ``gevent.Timeout`` (imported only when used)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webmini._extras import require
from webmini.errors import GatewayTimeout


def call_with_timeout(seconds: float, func: Callable[..., Any], *args: Any) -> Any:
    """Call ``func(*args)``; answer 504 if it is still running after ``seconds``.

    uWSGI's harakiri acts on a whole worker, so under gevent it cannot stop
    one slow greenlet: this bound is per request.
    """
    with require("gevent", "per-request timeouts"):
        import gevent
    timer = gevent.Timeout(seconds)
    timer.start()
    try:
        return func(*args)
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        raise GatewayTimeout(f"request took longer than {seconds:g} s") from None
    finally:
        timer.close()
