"""HTTP errors and status responses raised (or returned) by handlers.

Unlike web.py, constructing one of these never touches the request context:
the application applies status, headers and body when it catches them (a
redirect's ``Location`` is resolved then, against the request served).
This module imports only :mod:`webmini.headers` and :mod:`webmini.redirects`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webmini.headers import as_status, header_list
from webmini.redirects import clean_target

HeadersArg = dict[str, str] | list[tuple[str, str]] | None

#: Called with each HTTPError as it is built (webmini.app sets it): the only
#: trace building one leaves, used solely for an error a handler builds and
#: then neither raises nor returns (``web.seeother("/")`` on its own line).
on_build: Callable[[HTTPError], None] | None = None


class HTTPError(Exception):
    """An HTTP response expressed as an exception: status, headers and body."""

    code: int = 500
    default_message: str = ""

    def __init__(
        self,
        status: str | int | None = None,
        headers: HeadersArg = None,
        data: Any = None,
    ) -> None:
        self.status = as_status(self.code if status is None else status)
        self.headers: list[tuple[str, str]] = header_list(headers)
        self.data = self.default_message if data is None else data
        super().__init__(self.status)
        if on_build is not None:
            on_build(self)

    @property
    def status_code(self) -> int:
        """The numeric status code."""
        return int(self.status[:3])


class _Status(HTTPError):
    """A response with a fixed status: ``Cls(message=None, headers=None)``."""

    def __init__(self, message: Any = None, headers: HeadersArg = None) -> None:
        HTTPError.__init__(self, self.code, headers, message)


class OK(_Status):
    """200 OK."""

    code = 200


class Created(_Status):
    """201 Created."""

    code = 201


class Accepted(_Status):
    """202 Accepted."""

    code = 202


class NoContent(_Status):
    """204 No Content."""

    code = 204


class NotModified(_Status):
    """304 Not Modified."""

    code = 304


class BadRequest(_Status):
    """400 Bad Request."""

    code = 400
    default_message = "bad request"


class Unauthorized(_Status):
    """401 Unauthorized."""

    code = 401
    default_message = "unauthorized"


class Forbidden(_Status):
    """403 Forbidden."""

    code = 403
    default_message = "forbidden"


class NotFound(_Status):
    """404 Not Found."""

    code = 404
    default_message = "not found"


class NoMethod(HTTPError):
    """405 Method Not Allowed, with the ``Allow`` header."""

    code = 405
    default_message = "method not allowed"

    def __init__(self, allowed: list[str] | tuple[str, ...] | None = None, message: Any = None):
        headers = [("Allow", ", ".join(allowed))] if allowed is not None else []
        HTTPError.__init__(self, 405, headers, message)


class NotAcceptable(_Status):
    """406 Not Acceptable."""

    code = 406
    default_message = "not acceptable"


class Conflict(_Status):
    """409 Conflict."""

    code = 409
    default_message = "conflict"


class Gone(_Status):
    """410 Gone."""

    code = 410
    default_message = "gone"


class PreconditionFailed(_Status):
    """412 Precondition Failed."""

    code = 412
    default_message = "precondition failed"


class PayloadTooLarge(_Status):
    """413 Content Too Large."""

    code = 413
    default_message = "content too large"


class UnsupportedMediaType(_Status):
    """415 Unsupported Media Type."""

    code = 415
    default_message = "unsupported media type"


class UnprocessableEntity(_Status):
    """422 Unprocessable Content."""

    code = 422
    default_message = "unprocessable content"


class TooManyRequests(_Status):
    """429 Too Many Requests."""

    code = 429
    default_message = "too many requests"


class InternalError(_Status):
    """500 Internal Server Error."""

    code = 500
    default_message = "internal server error"


class ServiceUnavailable(_Status):
    """503 Service Unavailable."""

    code = 503
    default_message = "service unavailable"


class GatewayTimeout(_Status):
    """504 Gateway Timeout."""

    code = 504
    default_message = "gateway timeout"


class UnsafeRedirect(BadRequest, ValueError):
    """400: a redirect target that is not http(s) or holds control characters.

    Also a ``ValueError``: raised where the redirect is built, like any bad argument.
    """


class Redirect(HTTPError):
    """301 Moved Permanently to ``url``.

    The target is checked here (http/https only, same host for relative
    targets: :mod:`webmini.redirects`); ``Location`` is resolved under
    ``ctx.homepath`` (``absolute=True``: the domain root) when the response
    is produced, relative unless ``config.absolute_redirects``.
    """

    code = 301

    def __init__(self, url: str, status: int | str | None = None, absolute: bool = False):
        # SECURITY: same-host relative targets, http(s) only, percent-encoded,
        # no control characters (no response splitting): see webmini.redirects.
        # A target that is none of these came from the request: a 400.
        try:
            url = clean_target(url)
        except ValueError as e:
            raise UnsafeRedirect(f"unsafe redirect target: {e}") from None
        self.url = url
        self.absolute = absolute
        HTTPError.__init__(self, self.code if status is None else status, [("Location", url)], "")


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
