"""webmini: a web.py-style WSGI microframework for high-concurrency APIs.

``import webmini as web`` gives web.py's names; see README for the differences.
"""

from __future__ import annotations

from typing import Any

from webmini import _webpy_alias, dropped
from webmini.app import application
from webmini.config import config
from webmini.ctx import ctx
from webmini.errors import (
    OK,
    Accepted,
    BadRequest,
    Conflict,
    Created,
    Forbidden,
    Found,
    GatewayTimeout,
    Gone,
    HTTPError,
    InternalError,
    NoContent,
    NoMethod,
    NotAcceptable,
    NotFound,
    NotModified,
    PayloadTooLarge,
    PermanentRedirect,
    PreconditionFailed,
    Redirect,
    SeeOther,
    ServiceUnavailable,
    TempRedirect,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
    UnsupportedMediaType,
    accepted,
    badrequest,
    conflict,
    created,
    forbidden,
    found,
    gone,
    nocontent,
    nomethod,
    notacceptable,
    notmodified,
    ok,
    redirect,
    seeother,
    tempredirect,
    unauthorized,
)
from webmini.filenames import secure_filename
from webmini.redirects import is_safe_url
from webmini.request import FileUpload, cookies, data, getheader, input, json
from webmini.response import expires, header, lastmodified, modified, set_status, setcookie
from webmini.storage import Storage, storage, storify
from webmini.webapi import (
    autodelegate,
    changequery,
    internalerror,
    loadhook,
    notfound,
    unloadhook,
    url,
)

__version__ = "0.1.0"

__all__ = [
    "OK", "Accepted", "BadRequest", "Conflict", "Created", "FileUpload", "Forbidden", "Found",
    "GatewayTimeout", "Gone", "HTTPError", "InternalError", "NoContent", "NoMethod",
    "NotAcceptable", "NotFound", "NotModified", "PayloadTooLarge", "PermanentRedirect",
    "PreconditionFailed", "Redirect", "SeeOther", "ServiceUnavailable", "Storage",
    "TempRedirect", "TooManyRequests", "Unauthorized", "UnprocessableEntity",
    "UnsupportedMediaType", "accepted", "application", "autodelegate",
    "badrequest", "changequery", "config", "conflict", "cookies", "created", "ctx", "data",
    "expires", "forbidden", "found", "getheader", "gone", "header", "input", "internalerror",
    "is_safe_url", "secure_filename",
    "json", "lastmodified", "loadhook", "modified", "nocontent", "nomethod", "notacceptable",
    "notfound", "notmodified", "ok", "redirect", "seeother", "set_status", "setcookie",
    "storage", "storify", "tempredirect", "unauthorized", "unloadhook", "url",
]

# Two registrations, done here where a reader finds them rather than as a side
# effect of some import: `import webmini.db` (and the other web.py module names)
# finds webmini.webpy.db through a sys.meta_path finder, and an HTTPError built
# but never raised acts as in web.py (see dropped.py).
_webpy_alias.install()
dropped.install()


def __getattr__(name: str) -> Any:
    # Wings and web.py's modules load on first use: the core imports neither.
    if name == "WebSocket":
        from webmini.realtime.websocket import WebSocket

        return WebSocket
    if name in _webpy_alias.WEBPY_MODULES:
        return _webpy_alias.load_module(name)
    return _webpy_alias.find_name(name)  # AttributeError unless web.py exports it
