"""web.py's helper functions that act on the current request or application."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from webmini import body, errors
from webmini.ctx import current, current_or_none
from webmini.request import _query as _query_fields


def _from_override(name: str) -> errors.HTTPError | None:
    # The application's replacement for notfound/internalerror, unless we are
    # already inside it (an override that calls web.<name>() itself).
    c = current_or_none()
    if c is None or c.in_override == name:
        return None
    app = c.hook_app(name)  # a sub-application inherits its parent's hook
    if getattr(getattr(app, name, None), "is_default_hook", False):
        return None
    result: errors.HTTPError = c.call_hook(app, name)
    return result


def notfound(message: Any = None, headers: Any = None) -> errors.HTTPError:
    """Return a 404; with no message, the application's ``notfound`` override is used."""
    if message is None:
        custom = _from_override("notfound")
        if custom is not None:
            return custom
    return errors.NotFound(message, headers)


def internalerror(message: Any = None, headers: Any = None) -> errors.HTTPError:
    """Return a 500; with no message, the application's ``internalerror`` override is used."""
    if message is None:
        custom = _from_override("internalerror")
        if custom is not None:
            return custom
    return errors.InternalError(message, headers)


def loadhook(hook: Callable[[], Any]) -> Callable[[Callable[[], Any]], Any]:
    """Make a processor that calls ``hook()`` before each request (``async def`` too)."""
    from webmini.app import _sync

    hook = _sync(hook)  # an async def hook runs on the worker's asyncio loop

    def processor(handler: Callable[[], Any]) -> Any:
        hook()
        return handler()

    return processor


def unloadhook(hook: Callable[[], Any]) -> Callable[[Callable[[], Any]], Any]:
    """Make a processor that calls ``hook()`` after each request, errors and streams included."""
    from webmini.app import _sync

    hook = _sync(hook)  # an async def hook runs on the worker's asyncio loop

    def processor(handler: Callable[[], Any]) -> Any:
        try:
            result = handler()
        except BaseException:
            hook()
            raise
        # A streamed body is still running: the hook waits for its end.
        if body.is_stream(result):
            return body.run_after(result, hook)
        hook()
        return result

    return processor


def autodelegate(prefix: str = "") -> Callable[..., Any]:
    """Return a method that dispatches ``/name/rest`` to ``self.<prefix>name(rest)``."""

    def internal(self: Any, arg: str) -> Any:
        if "/" in arg:
            name, rest = arg.split("/", 1)
            args = ["/" + rest]
        else:
            name, args = arg, []
        func = prefix + name
        # SECURITY: only plain identifiers reach getattr, and the part the
        # URL chose never starts with "_": with autodelegate("_"),
        # "/admin/_dir__" would otherwise call self.__dir__ (any dunder).
        if not func.isidentifier() or name.startswith("_") or func.startswith("__"):
            raise notfound()
        method = getattr(self, func, None)
        if method is None or not callable(method):
            raise notfound()  # the application's notfound hook, as in web.py
        try:
            inspect.signature(method).bind(*args)
        except TypeError:
            raise notfound() from None  # more path than the method takes: 404, as in web.py
        except ValueError:
            pass  # no signature to read (a builtin): call it as is
        return method(*args)

    return internal


def url(path: str | None = None, doseq: bool = False, **kw: Any) -> str:
    """Return ``path`` under the application's home path, with ``kw`` as query."""
    c = current()
    if path is None:
        path = c.path
    if path.startswith("/"):
        path = c.homepath + path
    if kw:
        path += "?" + urlencode(kw, doseq=doseq)
    return path


def changequery(query: dict[str, Any] | None = None, **kw: Any) -> str:
    """Return the current URL with query fields changed (``None`` removes one).

    Repeated fields keep every value, as in web.py.
    """
    if query is None:
        last, repeated = _query_fields(current())
        fields: dict[str, Any] = {k: repeated.get(k, v) for k, v in last.items()}
    else:
        fields = dict(query)
    for key, value in kw.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    out = current().path
    if fields:
        out += "?" + urlencode(fields, doseq=True)
    return out
