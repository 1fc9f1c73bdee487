"""Finishing a request: a handler's result or error becomes status, headers and body.

:mod:`webmini.response` holds what a handler calls while it runs
(``web.header``, ``web.setcookie``...); this module holds what webmini does
once the handler has returned or raised: the result (str, bytes, dict, file,
generator, ``(body, status, headers)``, an HTTPError) becomes the answer, an
error or an exception becomes its answer (logged and reported once, through
:func:`webmini.reporting.unhandled`), an error built but dropped still applies
(see :mod:`webmini.dropped`), and a request body left unread is drained under
uWSGI. It is a module of its own, not part of :mod:`webmini.response`, so that
one stays the small set of helpers ``web.*`` exposes and this one can depend on
the error pages, redirects and reporting without those landing in ``web``'s
namespace; ``webmini.app`` keeps the URL table, processors and dispatch.

The response headers have one owner, the request context
(:class:`webmini.ctx.ResponseHeaders`): everything here adds, replaces or
drops them through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import GeneratorType
from typing import Any

from webmini import body, errors
from webmini.body import JSON_TYPE, json_bytes
from webmini.config import config
from webmini.ctx import NOSNIFF_ONLY, RequestContext, ResponseHeaders
from webmini.errors import HTTPError
from webmini.headers import check_header
from webmini.problem import render as render_error
from webmini.redirects import resolve_location
from webmini.reporting import unhandled
from webmini.request import _content_length, _drain

__all__ = ["apply_dropped_error", "drain_unread_body", "error_result", "finish",
           "internal_error", "internal_error_response", "stream_failed"]

# The logger the application's own messages have always used.
log = logging.getLogger("webmini.app")

StartResponse = Callable[..., Any]

_NO_BODY_STATUS = frozenset({"204", "304"})
_default_content_type = ResponseHeaders.default_content_type
_PLAIN = "text/plain; charset=utf-8"


def already_logged(e: HTTPError) -> HTTPError:
    """Mark a 5xx whose cause was logged already (a traceback): not logged again."""
    setattr(e, "_webmini_logged", True)  # noqa: B010 - a flag, not a declared field
    return e


# -- errors ----------------------------------------------------------------


def _apply_error(c: RequestContext, e: HTTPError) -> list[tuple[str, str]]:
    """Set ``e``'s status and add its headers; return them.

    A redirect's Location is resolved now, against the request served:
    relative unless configured otherwise (see webmini.redirects). Every
    header is checked before anything is applied (ValueError otherwise).
    """
    headers = e.headers
    if isinstance(e, errors.Redirect):
        location = resolve_location(e.url, e.absolute, c, config["absolute_redirects"],
                                    config["allowed_hosts"])
        headers = [("Location", location) if n == "Location" else (n, v) for n, v in headers]
    for name, value in headers:
        check_header(name, value)
    c.status = e.status
    c.add_headers(headers)
    return headers


def apply_dropped_error(c: RequestContext, result: Any) -> None:
    """Apply the status and headers of the error built but never raised nor returned."""
    e = c.built_error
    c.built_error = None
    if e is result or e.__traceback__ is not None:
        return  # returned, or raised (even if caught): it has done its work
    _apply_error(c, e)


def error_result(c: RequestContext, e: HTTPError) -> Any:
    """Apply HTTPError ``e`` to the response; return the body to finish with."""
    if e.status[:1] == "5" and not getattr(e, "_webmini_logged", False):
        # Every 5xx is logged once, with its cause (a pool timeout, a
        # store down...): a 503 must never be silent.
        cause, kind = e.__cause__ or e.__context__, type(e).__name__  # PoolTimeout...
        log.error("%s %s answered %s: %s (%s%s)", c.method, c.path, e.status, e.data, kind,
                  f", caused by {type(cause).__name__}: {cause}" if cause is not None else "")
    try:
        headers = _apply_error(c, e)
    except ValueError:
        return internal_error(c)
    if not any(name.lower() == "content-type" for name, _ in headers):
        # SECURITY: an error's text may quote the request ("no such user:
        # <script>..."): plain text unless the error itself says otherwise
        # (headers={"Content-Type": "text/html"} for an HTML error page)
        # or its body is HTML the app built (__html__: a template, whose
        # values are escaped), as in web.notfound(render.notfound()).
        c.drop_content_type()
        if hasattr(e.data, "__html__") or isinstance(e.data, (dict, list)):
            return e.data  # HTML as HTML, a dict or list as JSON
        rendered = render_error(e, c.env)
        content_type, data = rendered if rendered is not None else (_PLAIN, e.data)
        c.add_header("Content-Type", content_type)
        return data
    return e.data


def internal_error(c: RequestContext) -> Any:
    """Answer the exception being handled: log and report it; return the 500's body."""
    return error_result(c, internal_error_response(c))


def internal_error_response(c: RequestContext, keep: int = 0) -> HTTPError:
    """Log the exception being handled; return the 500 to answer with.

    The headers set so far are dropped, but the first ``keep`` (set by
    processors before the handler ran) minus any Content-Type; the answer is the innermost
    ``internalerror`` hook's (a sub-application inherits its parent's),
    or the debug page when ``config.debug`` is on.
    """
    exc_info = unhandled(c)  # logged, reported; raised on when propagate_exceptions
    c.reset_headers(keep)
    if config.debug:
        from webmini.serving.debugpage import render

        page = render(exc_info, c.env)
        return already_logged(
            errors.InternalError(page, [("Content-Type", "text/html; charset=utf-8")]))
    try:
        e = c.call_hook(c.hook_app("internalerror"), "internalerror")
    except HTTPError as raised:
        e = raised
    except Exception:
        log.exception("internalerror handler failed")
        e = errors.InternalError()
    if not isinstance(e, HTTPError):
        e = errors.InternalError(e)
    return already_logged(e)


def stream_failed(c: RequestContext) -> None:
    """Report an exception raised while a streamed body was being sent."""
    unhandled(c, "stream")
    app = c.app_stack[-1] if c.app_stack else c.app
    try:
        c.call_hook(app, "internalerror")
    except Exception:  # the hook is for reporting only at this point
        log.exception("internalerror handler failed")


def _unsupported(
    c: RequestContext, error: TypeError | ValueError, start_response: StartResponse,
    in_error: bool,
) -> Any:
    """Answer a result webmini cannot send with a logged 500."""
    try:
        raise error
    except (TypeError, ValueError):
        if in_error:
            # The internalerror hook's own answer was unsendable: the plain 500.
            log.exception("unsendable internalerror response")
            c.reset_headers()
            result = error_result(c, already_logged(errors.InternalError()))
        else:
            result = internal_error(c)
    return finish(c, result, start_response, True)


# -- results ---------------------------------------------------------------


def finish(
    c: RequestContext, result: Any, start_response: StartResponse, in_error: bool = False,
) -> Any:
    """Turn the handler's ``result`` into the response: call ``start_response``, return the body."""
    # PERF: the common bodies (bytes, str, dict) are tested by exact type first.
    t = type(result)
    if t is bytes:
        data = result
    elif t is str:
        data = result.encode("utf-8")
    elif t is dict or t is list:
        # PERF: _json_body() and c.default_content_type() inlined (a method
        # call on the context goes through its __getattr__ hook).
        if not c.content_typed and (c.headers == NOSNIFF_ONLY or not c.has_content_type()):
            c.headers.append(("Content-Type", JSON_TYPE))
            c.content_typed = True
        data = json_bytes(result)
    else:
        kind = body.kind(result)
        if kind == body.EMPTY:
            data = b""
        elif kind == body.TEXT:
            data = str(result).encode("utf-8")
        elif kind == body.BYTES:
            data = bytes(result)
        elif kind == body.HTML:
            data = body.html_bytes(result)
            c.default_content_type(body.HTML_TYPE)
        elif kind == body.JSON:
            data = _json_body(c, result)
        elif kind == body.ERROR:
            return finish(c, error_result(c, result), start_response, in_error)
        elif kind == body.TUPLE:
            try:
                inner, status, headers = body.split_tuple(result)
            except (TypeError, ValueError) as e:
                where = c.app.describe_handler(c)
                error = type(e)(f"{where} returned a bad (body, status, headers) tuple: {e}")
                return _unsupported(c, error, start_response, in_error)
            c.status = status
            c.add_headers(headers)
            return finish(c, inner, start_response, in_error)
        elif kind == body.FILE:
            return _file_response(c, result, start_response)
        elif kind == body.STREAM:
            return _stream_response(c, result, start_response, in_error)
        else:
            error = body.unsupported(c.app.describe_handler(c), result)
            return _unsupported(c, error, start_response, in_error)
    headers = c.headers
    status = c.status
    code = status[:3]
    if code in _NO_BODY_STATUS:
        start_response(status, [h for h in headers if h[0].lower() != "content-type"])
        return []
    # PERF: c.default_content_type() inlined: no call while the headers are untouched.
    if not c.content_typed and (headers == NOSNIFF_ONLY or not c.has_content_type()):
        headers.append(("Content-Type", config["default_content_type"]))
    head = c.method == "HEAD"  # with the Content-Length its GET has (as Flask): unchunked
    if not head or not any(h[0].lower() == "content-length" for h in headers):
        headers.append(("Content-Length", str(len(data))))
    start_response(status, headers)
    return [] if head else [data]


def _json_body(c: RequestContext, result: Any) -> bytes:
    _default_content_type(c, JSON_TYPE)
    return json_bytes(result)


def _file_response(c: RequestContext, f: Any, start_response: StartResponse) -> Any:
    c.default_content_type(body.FILE_TYPE)
    headers = c.headers
    size = body.remaining_size(f)
    if size is not None and c.status[:3] not in _NO_BODY_STATUS:
        headers.append(("Content-Length", str(size)))
    if c.method == "HEAD" or c.status[:3] in _NO_BODY_STATUS:
        f.close()
        start_response(c.status, headers)
        return []
    start_response(c.status, headers)
    wrapper = c.env.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(f, body.CHUNK_SIZE)
    return body.FileIterator(f)


def _stream_response(
    c: RequestContext, result: Any, start_response: StartResponse, in_error: bool
) -> Any:
    iterator = iter(result)
    # Pull the first chunk now, inside the request context, so headers the
    # generator sets and errors it raises before yielding still count.
    try:
        first = next(iterator)
    except StopIteration:
        first = b""
        iterator = iter(())
    except HTTPError as e:
        body.close(iterator)
        return finish(c, error_result(c, e), start_response, in_error)
    except Exception:
        body.close(iterator)
        return finish(c, internal_error(c), start_response, True)
    try:
        first_bytes = body.encode_chunk(first)
    except TypeError as e:
        body.close(iterator)
        error = TypeError(f"{c.app.describe_handler(c)} yielded a bad chunk: {e}")
        return _unsupported(c, error, start_response, in_error)
    c.default_content_type(config.default_content_type)
    if c.method == "HEAD" or c.status[:3] in _NO_BODY_STATUS:
        body.close(iterator)
        start_response(c.status, c.headers)
        return []
    start_response(c.status, c.headers)
    return body.StreamingBody(c, first_bytes, iterator, stream_failed, c.app.describe_handler)


# -- the request body ------------------------------------------------------


def drain_unread_body(environ: dict[str, Any], result: Any) -> None:
    """Under uWSGI, read and drop what the app left unread of a request body.

    uWSGI closes the connection over unread request data, the kernel answers
    RST, and nginx turns the handler's answer into a 502 (a webhook answering
    204 without reading, a redirect after a POST). gunicorn and the dev server
    skip unread bodies themselves. Bounded like a refused body (DRAIN_LIMIT);
    a streamed result (a generator) may still read, and is left alone.
    """
    if "uwsgi.version" not in environ or type(result) is GeneratorType:
        return
    try:
        length = _content_length(environ)
    except errors.BadRequest:
        return  # the request was answered 400 already, if the app read it
    if length:
        _drain(environ["wsgi.input"], length)
