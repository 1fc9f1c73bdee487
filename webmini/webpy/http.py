"""web.py's ``web.http`` and the request helpers of ``web.webapi`` the core does not carry.

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

__all__ = [
    "expires", "lastmodified", "prefixurl", "modified", "changequery", "url",
    "debug", "rawinput", "PreconditionFailed", "preconditionfailed",
    "UnavailableForLegalReasons", "unavailableforlegalreasons",
    "unsupportedmediatype",
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
