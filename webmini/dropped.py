"""web.py's errors act when built; webmini's act when raised or returned, with one exception.

web.py apps write ``web.seeother("/")`` alone on a line: the error object is
built, then dropped, and web.py still redirects because its constructor set
the status and headers. webmini's errors have no such side effect; instead,
the last HTTPError built while a request is served is remembered, and if the
handler returns normally while that error was never raised (not even raised
and caught) nor returned, its status and headers are applied then
(:func:`webmini.finish.apply_dropped_error`).
"""

from __future__ import annotations

from webmini import errors
from webmini.config import config
from webmini.ctx import RequestContext, current_or_none
from webmini.redirects import resolve_location


def remember_built(error: errors.HTTPError) -> None:
    """Note ``error`` as the last one built in the current request (errors.on_build)."""
    c = current_or_none()
    if c is not None:
        c.built_error = error


def resolve_here(e: errors.Redirect, c: RequestContext) -> None:
    """Fix a redirect's target against the (sub-)application serving now.

    Afterwards it is a path from the domain root (``absolute=True``) or a
    full URL, so the parent application leaves it as it is.
    """
    e.url = resolve_location(e.url, e.absolute, c, config["absolute_redirects"],
                             config["allowed_hosts"])
    e.absolute = True


def install() -> None:
    """Have every HTTPError built report itself to :func:`remember_built` (``errors.on_build``).

    Called once by ``webmini/__init__.py``; importing this module alone changes nothing.
    """
    errors.on_build = remember_built
