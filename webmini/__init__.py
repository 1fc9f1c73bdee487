"""webmini: a web.py-style WSGI microframework for high-concurrency APIs.

``import webmini as web`` gives web.py's names; see README for the differences.
"""

from __future__ import annotations

from typing import Any

from .app import application
from .config import config
from .ctx import ctx
from .errors import (
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
from .request import FileUpload, cookies, data, getheader, input, json
from .response import expires, header, lastmodified, modified, set_status, setcookie
from .storage import Storage, storage, storify
from .webapi import (
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
    "UnsupportedMediaType", "WebSocket", "accepted", "application", "autodelegate",
    "badrequest", "changequery", "config", "conflict", "cookies", "created", "ctx", "data",
    "expires", "forbidden", "found", "getheader", "gone", "header", "input", "internalerror",
    "json", "lastmodified", "loadhook", "modified", "nocontent", "nomethod", "notacceptable",
    "notfound", "notmodified", "ok", "redirect", "seeother", "set_status", "setcookie",
    "storage", "storify", "tempredirect", "unauthorized", "unloadhook", "url",
]


def __getattr__(name: str) -> Any:
    # The WebSocket base class lives in an extra; import it only when asked for.
    if name == "WebSocket":
        from .websocket import WebSocket

        return WebSocket
    raise AttributeError(f"module 'webmini' has no attribute {name!r}")
