"""web.py's ``web.http``, plus the names of ``web.webapi``, ``web.application`` and
``web.debugerror`` the core does not carry (``rawinput``, ``debug``,
``subdomain_application``, ``auto_application``, ``emailerrors``...).

``expires``, ``lastmodified``, ``modified``, ``changequery`` and ``url`` are
the core's own functions (``webmini.response``/``webmini.webapi``), listed
here so ``web.http.url`` works too.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from webmini import errors
from webmini.ctx import current
from webmini.request import _form, _query
from webmini.response import expires, lastmodified, modified
from webmini.storage import Storage
from webmini.webapi import changequery, url
from webmini.webpy.applications import auto_application, subdir_application, subdomain_application

__all__ = [
    "expires", "lastmodified", "prefixurl", "modified", "changequery", "url",
    "debug", "rawinput", "PreconditionFailed", "preconditionfailed",
    "UnavailableForLegalReasons", "unavailableforlegalreasons",
    "unsupportedmediatype", "subdir_application", "subdomain_application",
    "auto_application", "debugerror", "djangoerror", "emailerrors",
]

log = logging.getLogger("webmini")


def prefixurl(base: str = "") -> str:
    """Return ``base`` prefixed by one ``../`` per directory level of the current path."""
    path = current().path.lstrip("/")
    return "../" * path.count("/") + base


class _Debug:
    """``web.debug(...)`` prints to stderr; ``print(x, file=web.debug)`` works too."""

    def __call__(self, *args: Any) -> str:
        """Write ``args`` (repr'd like print) to stderr; return ``""`` as web.py does."""
        for a in args:
            sys.stderr.write(f"{a!r}\n" if not isinstance(a, str) else a + "\n")
        return ""

    def write(self, text: str) -> int:
        """Write ``text`` to stderr."""
        return sys.stderr.write(text)

    def flush(self) -> None:
        """Flush stderr."""
        sys.stderr.flush()


#: web.py's ``web.debug``: stderr, callable and file-like.
debug = _Debug()


def rawinput(method: str | None = None) -> Storage:
    """Return the request's fields (``"get"``, ``"post"`` or both) without defaults applied.

    Uploads stay :class:`FileUpload` objects (web.py gives its own upload
    objects here); a repeated field is a list.
    """
    which = "both" if method is None else method.lower()
    if which not in ("get", "post", "both"):
        which = "both"
    c = current()
    fields: dict[str, list[Any]] = {}
    sources = []
    if which in ("get", "both"):
        sources.append(_query(c))
    if which in ("post", "both") and c.method not in ("GET", "HEAD"):
        sources.append(_form(c))
    for last, multi in sources:
        for key, value in last.items():
            fields[key] = list(multi.get(key, [value]))
    return Storage(
        (k, v if len(v) > 1 else v[0]) for k, v in fields.items()
    )


PreconditionFailed = errors.PreconditionFailed
preconditionfailed = errors.PreconditionFailed
unsupportedmediatype = errors.UnsupportedMediaType


class UnavailableForLegalReasons(errors.HTTPError):
    """451 Unavailable For Legal Reasons."""

    code = 451
    default_message = "unavailable for legal reasons"

    def __init__(self, message: Any = None, headers: Any = None) -> None:
        errors.HTTPError.__init__(self, "451 Unavailable For Legal Reasons", headers, message)


unavailableforlegalreasons = UnavailableForLegalReasons


def debugerror() -> errors.HTTPError:
    """A 500 showing the debug page (traceback, request): ``app.internalerror = web.debugerror``.

    Like web.py's, it shows code and data to whoever gets the error: use it in
    development only (``web.config.debug = True`` does the same for every app).
    """
    from webmini.serving.debugpage import render

    page = render(sys.exc_info(), current().env)
    return errors.InternalError(page, {"Content-Type": "text/html; charset=utf-8"})


djangoerror = debugerror


def emailerrors(to_address: Any, olderror: Any, from_address: str | None = None) -> Any:
    """Wrap an internalerror handler so each 500 also emails its traceback to ``to_address``."""
    import traceback

    sender = from_address or to_address

    def emailerrors_internal() -> Any:
        c = current()
        text = "".join(traceback.format_exception(*sys.exc_info()))
        subject = f"internal error: {c.method} {c.home}{c.fullpath}"
        try:
            from webmini.webpy.mail import sendmail

            sendmail(sender, to_address, subject[:200].replace("\r", " ").replace("\n", " "),
                     text)
        except Exception:  # the error page must still be answered
            log.exception("emailerrors: could not send the error email")
        return olderror()

    return emailerrors_internal
