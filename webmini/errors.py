"""HTTP errors and status responses raised (or returned) by handlers.

Unlike web.py, constructing one of these never touches the request context:
the application applies status, headers and body when it catches them.
"""

from __future__ import annotations

from typing import Any

_REASONS: dict[int, str] = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Content", 429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


def status_line(code: int) -> str:
    """Return the WSGI status line (``"404 Not Found"``) for a numeric code."""
    return f"{code} {_REASONS.get(code, 'Unknown')}"


class HTTPError(Exception):
    """An HTTP response expressed as an exception: status, headers and body."""

    code: int = 500
    default_message: str = ""

    def __init__(
        self,
        status: str | int | None = None,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        data: Any = None,
    ) -> None:
        if status is None:
            status = self.code
        self.status = status_line(status) if isinstance(status, int) else status
        self.headers: list[tuple[str, str]] = (
            list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        )
        self.data = self.default_message if data is None else data
        super().__init__(self.status)

    @property
    def status_code(self) -> int:
        """The numeric status code."""
        return int(self.status[:3])


def _status_class(code: int, name: str, message: str | None = None) -> type[HTTPError]:
    def __init__(self: HTTPError, message: Any = None, headers: Any = None) -> None:
        HTTPError.__init__(self, code, headers, message)

    text = message if message is not None else _REASONS[code].lower()
    cls = type(
        name,
        (HTTPError,),
        {
            "code": code,
            "default_message": text,
            "__init__": __init__,
            "__doc__": f"{code} {_REASONS[code]}.",
        },
    )
    return cls


OK = _status_class(200, "OK", "")
Created = _status_class(201, "Created", "")
Accepted = _status_class(202, "Accepted", "")
NoContent = _status_class(204, "NoContent", "")
NotModified = _status_class(304, "NotModified", "")
BadRequest = _status_class(400, "BadRequest")
Unauthorized = _status_class(401, "Unauthorized")
Forbidden = _status_class(403, "Forbidden")
NotFound = _status_class(404, "NotFound")
NotAcceptable = _status_class(406, "NotAcceptable")
Conflict = _status_class(409, "Conflict")
Gone = _status_class(410, "Gone")
PreconditionFailed = _status_class(412, "PreconditionFailed")
PayloadTooLarge = _status_class(413, "PayloadTooLarge")
UnsupportedMediaType = _status_class(415, "UnsupportedMediaType")
UnprocessableEntity = _status_class(422, "UnprocessableEntity")
TooManyRequests = _status_class(429, "TooManyRequests")
HeaderFieldsTooLarge = _status_class(431, "HeaderFieldsTooLarge")
InternalError = _status_class(500, "InternalError")
ServiceUnavailable = _status_class(503, "ServiceUnavailable")
GatewayTimeout = _status_class(504, "GatewayTimeout")


class NoMethod(HTTPError):
    """405 Method Not Allowed, with the ``Allow`` header."""

    code = 405
    default_message = "method not allowed"

    def __init__(self, allowed: list[str] | tuple[str, ...] | None = None, message: Any = None):
        headers = [("Allow", ", ".join(allowed))] if allowed is not None else []
        HTTPError.__init__(self, 405, headers, message)


class Redirect(HTTPError):
    """301 Moved Permanently to ``url`` (made absolute against ``ctx.home``)."""

    code = 301

    def __init__(self, url: str, status: int | str | None = None, absolute: bool = False):
        from webmini.ctx import absolute_url  # late import: errors stays a leaf of the core
        from webmini.response import check_header

        location = absolute_url(url, absolute)
        # SECURITY: a URL built from user input must not split the response.
        check_header("Location", location)
        code = status if status is not None else self.code
        HTTPError.__init__(self, code, [("Location", location)], "")


class Found(Redirect):
    """302 Found."""

    code = 302


class SeeOther(Redirect):
    """303 See Other: the usual answer to a successful POST."""

    code = 303


class TempRedirect(Redirect):
    """307 Temporary Redirect: the method and body are kept."""

    code = 307


class PermanentRedirect(Redirect):
    """308 Permanent Redirect: the method and body are kept."""

    code = 308


# web.py's lowercase names.
ok = OK
created = Created
accepted = Accepted
nocontent = NoContent
notmodified = NotModified
badrequest = BadRequest
unauthorized = Unauthorized
forbidden = Forbidden
notfound = NotFound
nomethod = NoMethod
notacceptable = NotAcceptable
conflict = Conflict
gone = Gone
preconditionfailed = PreconditionFailed
toolarge = PayloadTooLarge
unsupportedmediatype = UnsupportedMediaType
internalerror = InternalError
redirect = Redirect
found = Found
seeother = SeeOther
tempredirect = TempRedirect
