"""The per-request context, held in a ContextVar.

A ContextVar is greenlet-local under gevent (greenlet >= 1.0 gives every
greenlet its own context) and thread-local under threads, whatever the
order in which gevent patching and imports happened.

Other modules reach it through :func:`current` (RuntimeError outside a
request), :func:`current_or_none`, and :func:`bind`/:func:`unbind` (a server
or a greenlet serving a request), never through the ContextVar itself.
``from webmini.ctx import current`` works although ``webmini.ctx`` the
attribute is the ``web.ctx`` proxy.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import partial
from typing import Any

from webmini.forwarded import client_ip, forwarded_host, forwarded_proto
from webmini.routing import SUBAPP

_current: ContextVar[RequestContext] = ContextVar("webmini.request")

#: ``parsed_json`` before the body was parsed as JSON (JSON may be ``null``).
UNSET: Any = object()

#: Every request's status until something sets another (compared by identity).
DEFAULT_STATUS = "200 OK"
#: The header every response carries (see RequestContext.headers).
NOSNIFF = ("X-Content-Type-Options", "nosniff")


def _fullpath(c: RequestContext) -> str:
    query = c.env.get("QUERY_STRING")
    return c.path + "?" + query if query else c.path


def _query(c: RequestContext) -> str:
    query = c.env.get("QUERY_STRING")
    return "?" + query if query else ""


def _protocol(c: RequestContext) -> str:
    env = c.env
    # SECURITY: X-Forwarded-* count only from config.trusted_proxies.
    if "HTTP_X_FORWARDED_PROTO" in env:
        proto = forwarded_proto(env)
        if proto:
            return proto
    return str(env.get("wsgi.url_scheme", "http"))


def _host(c: RequestContext) -> str:
    env = c.env
    if "HTTP_X_FORWARDED_HOST" in env:
        forwarded = forwarded_host(env)
        if forwarded:
            return forwarded
    host = env.get("HTTP_HOST")
    if host:
        return str(host)
    port = env.get("SERVER_PORT", "80")
    name = env.get("SERVER_NAME", "localhost")
    return name if port in ("80", "443") else f"{name}:{port}"


def _ip(c: RequestContext) -> str:
    if "HTTP_X_FORWARDED_FOR" in c.env:
        return client_ip(c.env)
    return str(c.env.get("REMOTE_ADDR", ""))


def _homedomain(c: RequestContext) -> str:
    return c.protocol + "://" + c.host


def _realhome(c: RequestContext) -> str:
    return c.homedomain + c.env.get("SCRIPT_NAME", "")


def _homepath(c: RequestContext) -> str:
    return str(c.env.get("SCRIPT_NAME", ""))


def _home(c: RequestContext) -> str:
    return c.homedomain + c.homepath


def _app_stack(c: RequestContext) -> list[Any]:
    return [c.app]


_LAZY = {
    "app_stack": _app_stack,
    "fullpath": _fullpath,
    "query": _query,
    "protocol": _protocol,
    "host": _host,
    "ip": _ip,
    "homedomain": _homedomain,
    "realhome": _realhome,
    "homepath": _homepath,
    "home": _home,
}


class RequestContext:
    """Everything webmini and the user know about the request being served.

    Common fields are set eagerly; the rest (``home``, ``ip``, ``query``, ...)
    are computed on first access and then stored. Handlers and processors may
    attach their own attributes (``ctx.session``, ``ctx.db``...).

    What webmini parses or decides per request has a declared slot of its
    own (``parsed_body``, ``parsed_form``...): read them through
    ``web.data()``, ``web.input()``, ``web.cookies()``; they stay out of
    ``repr(web.ctx)`` and never collide with the user's attributes.
    """

    # Computed on first access (see _LAZY), then stored in __dict__.
    app_stack: list[Any]  # the application, then each sub-application delegated to
    fullpath: str
    query: str
    protocol: str
    host: str
    ip: str
    homedomain: str
    realhome: str
    homepath: str
    home: str

    # PERF: the fields every request has live in slots (no dict to build per
    # request); lazy fields and the user's own attributes go to __dict__,
    # made on first use; lazy ones through __getattr__ on first access only.
    __slots__ = (
        "env", "environ", "app", "method", "path", "status", "headers", "has_content_type",
        # webmini's per-request state (see _STATE)
        "parsed_body", "body_streamed", "parsed_json", "parsed_form", "parsed_query",
        "parsed_cookies", "session_state", "in_override", "built_error",
        "matched_route", "route_prefix",
        "__dict__", "__weakref__",
    )
    _EAGER = ("env", "environ", "app", "method", "path", "status", "headers", "has_content_type")
    _STATE = (
        "parsed_body", "body_streamed", "parsed_json", "parsed_form", "parsed_query",
        "parsed_cookies", "session_state", "in_override", "built_error",
        "matched_route", "route_prefix",
    )

    env: dict[str, Any]
    environ: dict[str, Any]
    app: Any
    method: str
    path: str
    status: str
    headers: list[tuple[str, str]]
    has_content_type: bool
    #: The raw body, once read by ``web.data()``.
    parsed_body: bytes | None
    #: True once a multipart parser consumed ``wsgi.input`` directly.
    body_streamed: bool
    #: The body parsed as JSON by ``web.json()``, or :data:`UNSET`.
    parsed_json: Any
    #: Form fields (last values, repeated values), once parsed.
    parsed_form: tuple[dict[str, Any], dict[str, list[Any]]] | None
    #: Query fields (last values, repeated values), once parsed.
    parsed_query: tuple[dict[str, Any], dict[str, list[Any]]] | None
    #: The Cookie header parsed, once asked for.
    parsed_cookies: dict[str, str] | None
    #: Each loaded session's bookkeeping (``webmini.stores.sessions``), by session.
    session_state: Any
    #: The application hook running now (``"notfound"``...), so web.notfound() inside it
    #: gives the default rather than calling the hook again.
    in_override: str | None
    #: The last HTTPError built while serving this request (see webmini.app): one a
    #: handler builds and neither raises nor returns still sets the status, as in web.py.
    built_error: Any
    #: The URL-table row that matched (a ``webmini.routing.Route``), None before or without one.
    matched_route: Any
    #: The prefixes of the sub-applications delegated to, joined (None at the top).
    route_prefix: str | None

    def __init__(self, environ: dict[str, Any], app: Any, path: str) -> None:
        self.env = self.environ = environ
        self.app = app
        self.method = environ["REQUEST_METHOD"]
        self.path = path
        self.status = DEFAULT_STATUS
        # SECURITY: nosniff on every response: a browser never runs a body
        # as HTML or script against its declared type. PERF: one constant
        # pair in the list each request starts with.
        self.headers = [NOSNIFF]
        self.has_content_type = False
        # PERF: one chained store; reading an unset slot would cost an
        # AttributeError and a __getattr__ call each time.
        self.parsed_body = self.parsed_form = self.parsed_query = self.parsed_cookies = None
        self.session_state = self.in_override = self.built_error = self.matched_route = None
        self.route_prefix = None
        self.parsed_json = UNSET
        self.body_streamed = False

    @property
    def route(self) -> str | None:
        """The URL-table pattern that matched, sub-app prefixes first (``/api/users/(\\d+)``).

        None when no row matched (a 404) or before routing.
        """
        r = self.matched_route
        if r is None or r.kind == SUBAPP:
            return None
        prefix = self.route_prefix
        return prefix + r.pattern if prefix else r.pattern  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        compute = _LAZY.get(name)
        if compute is None:
            raise AttributeError(f"webmini.ctx has no attribute {name!r}")
        value = compute(self)
        self.__dict__[name] = value
        return value

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def __setitem__(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    def __contains__(self, name: str) -> bool:
        return name in self.__dict__ or name in _LAZY or name in self._EAGER

    def rebase(self, prefix: str, sub_app: Any) -> None:
        """Hand the request to ``sub_app`` mounted at ``prefix`` (web.py's sub-app delegation).

        ``path`` loses the prefix, ``homepath`` and ``home`` gain it, and
        ``fullpath`` is computed again from the new path when next read.
        """
        d = self.__dict__
        self.route_prefix = (self.route_prefix or "") + prefix  # kept after unbase
        self.homepath = self.homepath + prefix
        if "home" in d:
            self.home = self.home + prefix
        d.pop("fullpath", None)
        self.path = self.path[len(prefix):]
        self.app_stack.append(sub_app)

    def base(self) -> tuple[str, str, str | None]:
        """What :meth:`rebase` changes (path, homepath, home), for :meth:`unbase`."""
        return self.path, self.homepath, self.__dict__.get("home")

    def unbase(self, saved: tuple[str, str, str | None]) -> None:
        """Undo :meth:`rebase` once the sub-application is done, as web.py does.

        The parent application's processors see the full path again after
        the sub-application ran.
        """
        d = self.__dict__
        self.path, self.homepath, home = saved
        if home is None:
            d.pop("home", None)
        else:
            self.home = home
        d.pop("fullpath", None)
        if len(self.app_stack) > 1:
            self.app_stack.pop()

    def hook_app(self, name: str) -> Any:
        """The innermost application on the stack that overrides hook ``name``.

        A sub-application without its own ``notfound``/``internalerror``
        uses its parent's, as in web.py; with none overridden, the innermost.
        """
        stack = self.app_stack
        for app in reversed(stack):
            if not getattr(getattr(app, name, None), "is_default_hook", False):
                return app
        return stack[-1]

    def call_hook(self, app: Any, name: str) -> Any:
        """Call ``app.notfound``/``app.internalerror``; web.<name>() inside it gives the default."""
        previous = self.in_override
        self.in_override = name
        try:
            return getattr(app, name)()
        finally:
            self.in_override = previous

    def fields(self) -> dict[str, Any]:
        """The public fields set or computed so far, as a dict (for logging and debugging)."""
        return {**{name: getattr(self, name) for name in self._EAGER}, **self.__dict__}

    def get(self, name: str, default: Any = None) -> Any:
        """Return attribute ``name`` or ``default``, like ``dict.get``."""
        return getattr(self, name, default)

    def __repr__(self) -> str:
        return f"<RequestContext {self.method} {self.path!r}>"


def current() -> RequestContext:
    """Return the context of the request being served, or raise RuntimeError."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("webmini.ctx is only available while a request is served") from None


#: ``current_or_none()``: the context of the request being served, or None.
# PERF: a C-level partial of ContextVar.get, no Python frame.
current_or_none: partial[RequestContext | None] = partial(_current.get, None)

#: ``bind(c)``: make ``c`` the current context; returns the token :func:`unbind` takes.
bind = _current.set

#: ``unbind(token)``: restore the context that was current before :func:`bind`.
unbind = _current.reset


class OutsideRequest(RuntimeError, AttributeError):
    """Raised when ``web.ctx`` is read outside a request."""


class _ContextProxy:
    """``webmini.ctx``: forwards attribute access to the current request's context."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        c = current_or_none()
        if c is None:
            # An AttributeError too, so hasattr(web.ctx, "x") is False outside
            # a request (as in web.py) while the message still explains.
            raise OutsideRequest("webmini.ctx is only available while a request is served")
        return getattr(c, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(current(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(current(), name)

    def __getitem__(self, name: str) -> Any:
        return current()[name]

    def __setitem__(self, name: str, value: Any) -> None:
        current()[name] = value

    def __contains__(self, name: str) -> bool:
        try:
            return name in _current.get()
        except LookupError:
            return False

    def get(self, name: str, default: Any = None) -> Any:
        """Return attribute ``name`` of the current context, or ``default``."""
        try:
            return _current.get().get(name, default)
        except LookupError:
            return default

    def __repr__(self) -> str:
        try:
            return f"<webmini.ctx {_current.get().fields()!r}>"
        except LookupError:
            return "<webmini.ctx (no request)>"


ctx: Any = _ContextProxy()


def absolute_url(url: str, absolute: bool = False, c: RequestContext | None = None) -> str:
    """Make ``url`` absolute against request ``c`` (default: the current one), as web.py does.

    ``/x`` becomes ``home + /x`` (``absolute=True`` uses the domain root
    instead of the application's home); ``x`` is taken relative to the path.
    """
    if "://" in url:
        return url
    if c is None:
        c = _current.get(None)
        if c is None:
            return url
    if url.startswith(("//", "/\\", "\\")):
        # SECURITY: "//evil.com" stays on this host (as in web.py), never
        # becomes http://evil.com.
        url = "/" + url.lstrip("/\\")
    if url.startswith("/"):
        return (c.homedomain if absolute else c.home) + url
    base = c.home + c.path
    return base.rsplit("/", 1)[0] + "/" + url if "/" in base else url
