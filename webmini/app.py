"""``application``: the URL table, processors and the PEP 3333 entry point."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from importlib import import_module
from typing import Any

from webmini import errors
from webmini.config import config
from webmini.ctx import DEFAULT_STATUS, NOSNIFF, NOSNIFF_ONLY, RequestContext, bind, unbind
from webmini.dropped import resolve_here
from webmini.errors import HTTPError
from webmini.finish import (
    apply_dropped_error,
    drain_unread_body,
    error_result,
    finish,
    internal_error,
    internal_error_response,
)
from webmini.logs import AccessLine, AccessLog, access_line_ids
from webmini.problem import render as render_error
from webmini.request import screen
from webmini.routing import HANDLER, REDIRECT, Route, Router, pairs, resolve_or_fail
from webmini.storage import Storage

log = logging.getLogger(__name__)

Processor = Callable[[Callable[[], Any]], Any]
StartResponse = Callable[..., Any]

# Methods tried on handler classes, in the order an Allow header lists them.
_STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
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

def _sync(func: Any) -> Any:
    """Return ``func``, or a sync stand-in running an ``async def`` one (webmini.serving.aio)."""
    # PERF: CO_COROUTINE|CO_ASYNC_GENERATOR in the code flags, once per method (kept in methods)
    if getattr(getattr(func, "__code__", None), "co_flags", 0) & 0x280:
        from webmini.serving.aio import sync_handler
        func = sync_handler(func)
    return func

class application:  # noqa: N801 - web.py's name
    """A web.py-style application: ``application(urls, globals())``."""

    #: This app's error bodies: "text", "json" or "auto" (None: web.config.error_format).
    error_format: str | None = None
    # (header, environ key) of the request id once wsgifunc() turned the
    # access line on: _serve then records it itself (webmini.logs.AccessLine).
    _access_ids: tuple[str, str] | None = None

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
            if "uwsgi" in sys.modules or "gunicorn" in sys.modules:  # logging and the audit
                import_module("webmini.serving.uwsgi_setup").setup_workers()
        # PERF: the bound method, not the instance: no hop through __call__ per request.
        func: Any = self._serve
        for m in middleware:
            func = m(func)
        if middleware:
            return AccessLog(func) if config.get("access_log") else func
        # PERF: no middleware: _serve records the access line itself, no wrapper frame.
        self._access_ids = access_line_ids() or self._access_ids  # the TestClient's stays
        self._entry = self._entry or func
        return func

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request (PEP 3333) as ``wsgifunc()``'s callable does (set-up, access line)."""
        return (self._entry or self.wsgifunc())(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request: routing, handler, response (the access line once wsgifunc() is on)."""
        line = None
        if self._access_ids is not None and "webmini.request_id" not in environ \
                and config["access_log"]:
            start_response = line = AccessLine(environ, start_response, self._access_ids)
        try:  # SECURITY: path decoded and bounded, Host checked, before any routing
            path = screen(environ)
        except HTTPError as bad:
            content_type, text = render_error(bad, environ) or (_PLAIN, str(bad.data).encode())
            start_response(bad.status, [("Content-Type", content_type), NOSNIFF,
                                        ("Content-Length", str(len(text)))])
            return [text] if line is None else line.close([text])
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
                result = error_result(c, e)
            except Exception:
                result = internal_error(c)
            if "webmini.upgraded" in environ:
                # a WebSocket took the connection; its 101 is already sent
                return [] if line is None else line.close([])
            if environ.get("CONTENT_LENGTH"):  # PERF: no call for a request without a body
                drain_unread_body(environ, result)
            kind = type(result)
            if (kind is str or kind is bytes) and c.status is DEFAULT_STATUS \
                    and c.method != "HEAD":
                # PERF: the most common answer, a 200 with a text or bytes
                # body, without finish()'s general case.
                data = result.encode("utf-8") if kind is str else result
                headers = c.headers
                if not c.content_typed and (headers == NOSNIFF_ONLY or not c.has_content_type()):
                    headers.append(("Content-Type", config["default_content_type"]))
                headers.append(("Content-Length", str(len(data))))
                if line is not None:
                    return line.send(DEFAULT_STATUS, headers, data)
                start_response(DEFAULT_STATUS, headers)
                return [data]
            if line is None:
                return finish(c, result, start_response)
            return line.close(finish(c, result, start_response))
        except BaseException:
            if line is not None:
                line.failed()
            raise
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
            raise internal_error_response(c, keep) from None
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
                    static = _HandlerInfo(target, self.timeout, route)
                    # PERF: the class's method table, shared: what _call_class
                    # looks up once is found by __call__'s static fast path.
                    static.methods = self._info(target).methods
                    self._static_handlers[path] = static
                return self._call_class(c, target, args)
            return _sync(target)(*args)
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
            func = _sync(getattr(cls, method, None)) if _is_handler_method(method) else None
            if func is not None:
                info.methods[method] = func
        if func is None:
            if method == "HEAD":
                func = _sync(getattr(cls, "GET", None))
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
        from webmini.serving.devserver import rerun_patched, serve
        rerun_patched()  # `python app.py`: run again, patched before the app's imports
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
