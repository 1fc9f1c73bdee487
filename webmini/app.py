"""``application``: the URL table, processors and the PEP 3333 entry point."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from importlib import import_module
from typing import Any

from webmini import body, errors
from webmini.body import JSON_TYPE, json_bytes
from webmini.config import config
from webmini.ctx import DEFAULT_STATUS, NOSNIFF, RequestContext, bind, unbind
from webmini.dropped import apply_dropped_error, resolve_here
from webmini.errors import HTTPError
from webmini.headers import check_header
from webmini.logs import AccessLog
from webmini.problem import render as render_error
from webmini.redirects import resolve_location
from webmini.reporting import unhandled
from webmini.request import drain_unread_body, screen
from webmini.routing import HANDLER, REDIRECT, Route, Router, pairs, resolve_or_fail
from webmini.storage import Storage

log = logging.getLogger(__name__)

Processor = Callable[[Callable[[], Any]], Any]
StartResponse = Callable[..., Any]

# Methods tried on handler classes, in the order an Allow header lists them.
_STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
_NO_BODY_STATUS = frozenset({"204", "304"})
_PLAIN = "text/plain; charset=utf-8"
_STANDARD_SET = frozenset(_STANDARD_METHODS)


def _is_handler_method(name: str) -> bool:
    # SECURITY: REQUEST_METHOD is looked up on the handler class, so only
    # names made of upper-case ASCII letters may reach getattr (never
    # "__init__" or a helper method).
    return name in _STANDARD_SET or (name.isascii() and name.isalpha() and name.isupper())


def _allowed_methods(cls: type) -> list[str]:
    names = [m for m in dir(cls) if _is_handler_method(m) and callable(getattr(cls, m, None))]
    if "GET" in names and "HEAD" not in names:
        names.append("HEAD")
    if "OPTIONS" not in names:
        names.append("OPTIONS")
    order = {m: i for i, m in enumerate(_STANDARD_METHODS)}
    return sorted(names, key=lambda m: (order.get(m, len(order)), m))


class _HandlerInfo:
    """What dispatch needs to know about a handler class, computed once."""

    __slots__ = ("cls", "allow", "timeout", "methods", "route")

    def __init__(self, cls: type, app_timeout: float | None, route: Route | None = None) -> None:
        self.cls = cls
        self.allow = ", ".join(_allowed_methods(cls))
        timeout = getattr(cls, "timeout", None)
        self.timeout: float | None = app_timeout if timeout is None else timeout
        # PERF: method name -> function, filled on first use (hits only, so a
        # method added to the class later is still found).
        self.methods: dict[str, Callable[..., Any]] = {}
        self.route = route  # the static path's row, in _static_handlers

def _already_logged(e: HTTPError) -> HTTPError:
    """Mark a 5xx whose cause was logged already (a traceback): not logged again."""
    setattr(e, "_webmini_logged", True)  # noqa: B010 - a flag, not a declared field
    return e

class application:  # noqa: N801 - web.py's name
    """A web.py-style application: ``application(urls, globals())``."""

    #: This app's error bodies: "text", "json" or "auto" (None: web.config.error_format).
    error_format: str | None = None

    def __init__(
        self,
        mapping: Iterable[Any] = (),
        fvars: dict[str, Any] | None = None,
        autoreload: bool | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        self.fvars: dict[str, Any] = fvars if fvars is not None else {}
        self.mapping: list[tuple[str, Any]] = pairs(mapping)
        self.processors: list[Processor] = []
        self.timeout = timeout
        self._router = Router(self.mapping, _is_app)
        # PERF: static path -> its handler class's info, once the class is resolved.
        self._static_handlers: dict[str, _HandlerInfo] = {}
        self._handler_info: dict[type, _HandlerInfo] = {}
        # autoreload is accepted for web.py compatibility; the dev server reloads.
        self.autoreload = autoreload
        self._checked = False
        self._entry: Callable[..., Iterable[bytes]] | None = None  # __call__'s, once set up
        if "uwsgi" in sys.modules:  # SECURITY: refused at import, as by wsgifunc(): uWSGI exits
            import_module("webmini.serving.uwsgi_setup").refuse_public_http()

    # -- configuration -------------------------------------------------

    def add_mapping(self, pattern: str, target: Any) -> None:
        """Append ``pattern -> target`` to the URL table."""
        self.mapping.append((pattern, target))
        self._router = Router(self.mapping, _is_app)
        self._static_handlers = {}

    def add_processor(self, processor: Processor) -> None:
        """Add a processor: ``processor(handler)`` must call ``handler()``."""
        self.processors.append(processor)

    def notfound(self) -> HTTPError:
        """Return the 404 response; assign ``app.notfound = f`` to customise it."""
        return errors.NotFound()

    def internalerror(self) -> HTTPError:
        """Return the 500 response; assign ``app.internalerror = f`` to customise it."""
        return errors.InternalError()

    # A sub-application without its own hook uses its parent's (RequestContext.hook_app).
    notfound.is_default_hook = True  # type: ignore[attr-defined]
    internalerror.is_default_hook = True  # type: ignore[attr-defined]

    # -- WSGI ------------------------------------------------------------

    def wsgifunc(self, *middleware: Callable[[Any], Any]) -> Callable[..., Iterable[bytes]]:
        """Return the PEP 3333 callable; names the URL table lacks are a ValueError now."""
        if not self._checked:
            self._checked = True
            for line in resolve_or_fail(self._router.routes, self.fvars):
                log.warning("%s", line)  # e.g. a pattern without a leading "/"
            if "uwsgi" in sys.modules:  # nothing else sets up logging and the audit there
                import_module("webmini.serving.uwsgi_setup").setup_workers()
        # PERF: the bound method, not the instance: no hop through __call__ per request.
        func: Any = self._serve
        for m in middleware:
            func = m(func)
        entry = AccessLog(func) if config.get("access_log") else func
        self._entry = self._entry or (None if middleware else entry)
        return entry

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request (PEP 3333) as ``wsgifunc()``'s callable does (set-up, access line)."""
        return (self._entry or self.wsgifunc())(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request: routing, handler, response (no access line)."""
        try:  # SECURITY: path decoded and bounded, Host checked, before any routing
            path = screen(environ)
        except HTTPError as bad:
            content_type, text = render_error(bad, environ) or (_PLAIN, str(bad.data).encode())
            start_response(bad.status, [("Content-Type", content_type), NOSNIFF,
                                        ("Content-Length", str(len(text)))])
            return [text]
        c = RequestContext(environ, self, path)
        token = bind(c)
        try:
            try:
                if self.processors:
                    result = self.handle_with_processors(c)
                else:
                    static = self._static_handlers.get(path)
                    if static is None:
                        result = self.handle(c)
                    else:
                        # PERF: a known static path and no processors: the
                        # handler's method directly, without the frames of
                        # handle() and _call_class().
                        c.matched_route = static.route
                        func = static.methods.get(c.method)
                        if func is not None and not static.timeout:
                            result = func(static.cls())
                        else:
                            result = self._call_class(c, static.cls, ())
                if c.built_error is not None:
                    apply_dropped_error(c, result)
            except HTTPError as e:
                result = self._error_result(c, e)
            except Exception:
                result = self._internal_error(c)
            if "webmini.upgraded" in environ:
                return []  # a WebSocket took the connection; its 101 is already sent
            if environ.get("CONTENT_LENGTH"):  # PERF: no call for a request without a body
                drain_unread_body(environ, result)
            kind = type(result)
            if (kind is str or kind is bytes) and c.status is DEFAULT_STATUS \
                    and c.method != "HEAD":
                # PERF: the most common answer, a 200 with a text or bytes
                # body, without _finish's general case.
                data = result.encode("utf-8") if kind is str else result
                headers = c.headers
                if not c.has_content_type:
                    headers.append(("Content-Type", config["default_content_type"]))
                headers.append(("Content-Length", str(len(data))))
                start_response(DEFAULT_STATUS, headers)
                return [data]
            return self._finish(c, result, start_response)
        finally:
            unbind(token)

    # -- dispatch --------------------------------------------------------

    def handle_with_processors(self, c: RequestContext) -> Any:
        """Run the processors around :meth:`handle` (used for sub-apps too)."""
        processors = self.processors
        if not processors:
            return self._guard(c)

        def run(index: int) -> Any:
            if index == len(processors):
                return self._guard(c)
            return processors[index](lambda: run(index + 1))

        return run(0)

    def _guard(self, c: RequestContext) -> Any:
        # Errors become HTTPErrors inside the processor chain, so processors
        # outside (unloadhooks, sessions) see them raised, as in web.py: an
        # unhandled exception as the internalerror hook's answer.
        keep = len(c.headers)  # what processors set before the handler stays on a 500
        try:
            result = self.handle(c)
        except HTTPError:
            raise
        except Exception:
            raise self._internal_error_response(c, keep) from None
        if isinstance(result, HTTPError):
            raise result
        return result

    def handle(self, c: RequestContext) -> Any:
        """Route the request and call its handler; return the handler's result."""
        path = c.path
        static = self._static_handlers.get(path)
        if static is not None:
            c.matched_route = static.route
            return self._call_class(c, static.cls, ())
        hit = self._router.match(path)
        if hit is None:
            missing = c.call_hook(c.hook_app("notfound"), "notfound")
            raise missing if isinstance(missing, HTTPError) else errors.NotFound(missing)
        route, args = hit
        c.matched_route = route  # PERF: the reference; ctx.route formats it when read
        kind = route.kind
        if kind == HANDLER:
            target = route.target
            if isinstance(target, str):
                target = route.resolve(self.fvars)
            if isinstance(target, type):
                if not args and self._router.has_static(path):
                    self._static_handlers[path] = _HandlerInfo(target, self.timeout, route)
                return self._call_class(c, target, args)
            return target(*args)
        if kind == REDIRECT:
            url = self._router.expand_redirect(route, c.path)
            query = c.env.get("QUERY_STRING")
            raise errors.Redirect(url + "?" + query if query else url)
        return self._delegate(c, route)

    def _call_class(self, c: RequestContext, cls: type, args: tuple[Any, ...]) -> Any:
        method = c.method
        info = self._info(cls)
        func = info.methods.get(method)
        if func is None:
            func = getattr(cls, method, None) if _is_handler_method(method) else None
            if func is not None:
                info.methods[method] = func
        if func is None:
            if method == "HEAD":
                func = getattr(cls, "GET", None)
            elif method == "OPTIONS":
                c.headers.append(("Allow", info.allow))
                return b""
            if func is None:
                raise errors.NoMethod(info.allow.split(", "))
        if info.timeout:
            from webmini.serving.timeouts import call_with_timeout

            return call_with_timeout(info.timeout, func, cls(), *args)
        # PERF: f(*args) goes through the C call machinery (CPython 3.11);
        # f(a) with a known arity is a plain, inlined Python call.
        if not args:
            return func(cls())
        if len(args) == 1:
            return func(cls(), args[0])
        return func(cls(), *args)

    def _info(self, cls: type) -> _HandlerInfo:
        info = self._handler_info.get(cls)
        if info is None:
            info = self._handler_info[cls] = _HandlerInfo(cls, self.timeout)
        return info

    def _delegate(self, c: RequestContext, route: Route) -> Any:
        sub: application = route.target
        saved = c.base()
        c.rebase(route.pattern, sub)
        try:
            return sub.handle_with_processors(c)
        except errors.Redirect as e:  # resolved against the sub-app's home, as in web.py
            resolve_here(e, c)
            raise
        finally:
            built = c.built_error
            if isinstance(built, errors.Redirect) and built.__traceback__ is None:
                resolve_here(built, c)
            c.unbase(saved)

    def describe_handler(self, c: RequestContext) -> str:
        """Name what answers request ``c`` (``handler app.Users.GET for GET /users``)."""
        app: application = c.app_stack[-1]
        where = f"{c.method} {c.homepath}{c.path}"
        around = " (or a processor around it)" if app.processors or self.processors else ""
        hit = app._router.match(c.path)
        if hit is None:
            return f"the notfound hook for {where}"
        route, _ = hit
        target = route.target
        if route.kind == HANDLER and isinstance(target, str):
            try:
                target = route.resolve(app.fvars)
            except Exception:  # only naming it here; the handler ran already
                return f"handler {target!r} for {where}{around}"
        if isinstance(target, type):
            name = f"{target.__module__}.{target.__qualname__}.{c.method}"
        else:
            name = getattr(target, "__qualname__", None) or repr(target)
        return f"handler {name} for {where}{around}"

    # -- responses -------------------------------------------------------

    def _error_result(self, c: RequestContext, e: HTTPError) -> Any:
        if e.status[:1] == "5" and not getattr(e, "_webmini_logged", False):
            # Every 5xx is logged once, with its cause (a pool timeout, a
            # store down...): a 503 must never be silent.
            cause, kind = e.__cause__ or e.__context__, type(e).__name__  # PoolTimeout...
            log.error("%s %s answered %s: %s (%s%s)", c.method, c.path, e.status, e.data, kind,
                      f", caused by {type(cause).__name__}: {cause}" if cause is not None else "")
        headers = e.headers
        if isinstance(e, errors.Redirect):
            # The Location is resolved now, against the request served:
            # relative unless configured otherwise (see webmini.redirects).
            location = resolve_location(e.url, e.absolute, c, config["absolute_redirects"],
                                        config["allowed_hosts"])
            headers = [("Location", location) if n == "Location" else (n, v) for n, v in headers]
        try:
            for name, value in headers:
                check_header(name, value)
        except ValueError:
            return self._internal_error(c)
        c.status = e.status
        for name, value in headers:
            if name.lower() == "content-type":
                c.has_content_type = True
            c.headers.append((name, value))
        if not any(name.lower() == "content-type" for name, _ in headers):
            # SECURITY: an error's text may quote the request ("no such user:
            # <script>..."): plain text unless the error itself says otherwise
            # (headers={"Content-Type": "text/html"} for an HTML error page)
            # or its body is HTML the app built (__html__: a template, whose
            # values are escaped), as in web.notfound(render.notfound()).
            if c.has_content_type:
                c.headers = [h for h in c.headers if h[0].lower() != "content-type"]
                c.has_content_type = False
            if hasattr(e.data, "__html__") or isinstance(e.data, (dict, list)):
                return e.data  # HTML as HTML, a dict or list as JSON
            rendered = render_error(e, c.env)
            content_type, data = rendered if rendered is not None else (_PLAIN, e.data)
            c.headers.append(("Content-Type", content_type))
            c.has_content_type = True
            return data
        return e.data

    def _internal_error(self, c: RequestContext) -> Any:
        return self._error_result(c, self._internal_error_response(c))

    def _internal_error_response(self, c: RequestContext, keep: int = 0) -> HTTPError:
        """Log the exception being handled; return the 500 to answer with.

        The headers set so far are dropped, but the first ``keep`` (set by
        processors before the handler ran) minus any Content-Type; the answer is the innermost
        ``internalerror`` hook's (a sub-application inherits its parent's),
        or the debug page when ``config.debug`` is on.
        """
        exc_info = unhandled(c)  # logged, reported; raised on when propagate_exceptions
        c.headers = [h for h in c.headers[:keep] if h[0].lower() != "content-type"]
        if NOSNIFF not in c.headers:
            c.headers.append(NOSNIFF)
        c.has_content_type = False
        if config.debug:
            from webmini.serving.debugpage import render

            page = render(exc_info, c.env)
            return _already_logged(
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
        return _already_logged(e)

    def _unsupported(
        self, c: RequestContext, error: TypeError | ValueError, start_response: StartResponse,
        in_error: bool,
    ) -> Any:
        """Answer a result webmini cannot send with a logged 500."""
        try:
            raise error
        except (TypeError, ValueError):
            if in_error:
                # The internalerror hook's own answer was unsendable: the plain 500.
                log.exception("unsendable internalerror response")
                c.headers = [NOSNIFF]
                c.has_content_type = False
                result = self._error_result(c, _already_logged(errors.InternalError()))
            else:
                result = self._internal_error(c)
        return self._finish(c, result, start_response, True)

    def _finish(
        self, c: RequestContext, result: Any, start_response: StartResponse,
        in_error: bool = False,
    ) -> Any:
        # PERF: the common bodies (bytes, str, dict) are tested by exact type first.
        t = type(result)
        if t is bytes:
            data = result
        elif t is str:
            data = result.encode("utf-8")
        elif t is dict or t is list:
            data = self._json_body(c, result)
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
                if not c.has_content_type:
                    c.headers.append(("Content-Type", body.HTML_TYPE))
                    c.has_content_type = True
            elif kind == body.JSON:
                data = self._json_body(c, result)
            elif kind == body.ERROR:
                return self._finish(c, self._error_result(c, result), start_response, in_error)
            elif kind == body.TUPLE:
                try:
                    inner, status, headers = body.split_tuple(result)
                except (TypeError, ValueError) as e:
                    where = self.describe_handler(c)
                    error = type(e)(f"{where} returned a bad (body, status, headers) tuple: {e}")
                    return self._unsupported(c, error, start_response, in_error)
                c.status = status
                for name, value in headers:
                    if name.lower() == "content-type":
                        c.has_content_type = True
                    c.headers.append((name, value))
                return self._finish(c, inner, start_response, in_error)
            elif kind == body.FILE:
                return self._file_response(c, result, start_response)
            elif kind == body.STREAM:
                return self._stream_response(c, result, start_response, in_error)
            else:
                error = body.unsupported(self.describe_handler(c), result)
                return self._unsupported(c, error, start_response, in_error)
        headers = c.headers
        status = c.status
        code = status[:3]
        if code in _NO_BODY_STATUS:
            start_response(status, [h for h in headers if h[0].lower() != "content-type"])
            return []
        if not c.has_content_type:
            headers.append(("Content-Type", config["default_content_type"]))
        head = c.method == "HEAD"  # with the Content-Length its GET has (as Flask): unchunked
        if not head or not any(h[0].lower() == "content-length" for h in headers):
            headers.append(("Content-Length", str(len(data))))
        start_response(status, headers)
        return [] if head else [data]

    @staticmethod
    def _json_body(c: RequestContext, result: Any) -> bytes:
        if not c.has_content_type:
            c.headers.append(("Content-Type", JSON_TYPE))
            c.has_content_type = True
        return json_bytes(result)

    def _file_response(self, c: RequestContext, f: Any, start_response: StartResponse) -> Any:
        headers = c.headers
        if not c.has_content_type:
            headers.append(("Content-Type", body.FILE_TYPE))
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
        self, c: RequestContext, result: Any, start_response: StartResponse, in_error: bool
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
            return self._finish(c, self._error_result(c, e), start_response, in_error)
        except Exception:
            body.close(iterator)
            return self._finish(c, self._internal_error(c), start_response, True)
        try:
            first_bytes = body.encode_chunk(first)
        except TypeError as e:
            body.close(iterator)
            error = TypeError(f"{self.describe_handler(c)} yielded a bad chunk: {e}")
            return self._unsupported(c, error, start_response, in_error)
        if not c.has_content_type:
            c.headers.append(("Content-Type", config.default_content_type))
        if c.method == "HEAD" or c.status[:3] in _NO_BODY_STATUS:
            body.close(iterator)
            start_response(c.status, c.headers)
            return []
        start_response(c.status, c.headers)
        return body.StreamingBody(
            c, first_bytes, iterator, self.stream_failed, self.describe_handler
        )

    def stream_failed(self, c: RequestContext) -> None:
        """Report an exception raised while a streamed body was being sent."""
        unhandled(c, "stream")
        app = c.app_stack[-1] if c.app_stack else self
        try:
            c.call_hook(app, "internalerror")
        except Exception:  # the hook is for reporting only at this point
            log.exception("internalerror handler failed")

    # -- conveniences ----------------------------------------------------

    def request(self, localpart: str = "/", method: str = "GET", data: Any = None,
                host: str = "0.0.0.0:8080", headers: dict[str, str] | None = None,
                https: bool = False, **kw: Any) -> Storage:
        """Make a request to the application in-process; return status, headers, data."""
        from webmini.testing import build_environ, call_app

        env = build_environ(localpart, method, data, host, headers or {}, https, kw.get("env"))
        return call_app(self, env)

    def run(
        self,
        *middleware: Callable[[Any], Any],
        host: str | None = None,
        port: int | None = None,
        **options: Any,
    ) -> None:
        """Serve the application with the builtin gevent dev server.

        Like web.py, ``python app.py 8080`` or ``python app.py 0.0.0.0:8080``
        choose the address; ``options`` go to :func:`webmini.serving.devserver.serve`
        (``debug=True``, ``workers=2``, ``reload=True``...).
        """
        from webmini.serving.devserver import serve

        bind_host = "127.0.0.1" if host is None else host
        bind_port = 8080 if port is None else port
        if len(sys.argv) > 1 and host is None and port is None:
            arg = sys.argv[1]
            if ":" in arg:
                h, _, p = arg.rpartition(":")
                bind_host, bind_port = h, int(p)
            elif arg.isdigit():
                bind_port = int(arg)
        serve(self.wsgifunc(*middleware), host=bind_host, port=bind_port, **options)


def _is_app(target: Any) -> bool:
    return isinstance(target, application)
