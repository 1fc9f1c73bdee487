"""``web.template``: web.py's Templetor, same language and bytes, compiled once to Python.

``render = web.template.render("templates", base="layout")`` then
``render.index(posts)`` or ``render.admin.posts(...)`` renders
``templates/index.html`` inside ``templates/layout.html``. The language,
its escaping (``.html``/``.xml``/``.xhtml`` and ``filter=`` escape ``$x``;
``$:x`` never does) and its restricted builtins are web.py 0.76's; its
safety checks are a sandbox on Jinja2's model (:mod:`.templetor.sandbox`);
see README "Templates" for the few differences.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from types import CodeType
from typing import Any

from webmini.config import config
from webmini.ctx import current_or_none
from webmini.response import header
from webmini.webpy.templetor.compiler import SecurityError, compile_text
from webmini.webpy.templetor.parser import ParseError
from webmini.webpy.templetor.runtime import (
    TEMPLATE_BUILTINS,
    ForLoop,
    TemplateResult,
    make_env,
    websafe,
)

__all__ = [
    "ForLoop", "ParseError", "Render", "SecurityError", "Template", "TemplateResult", "frender",
    "render",
]

# Compiled code objects by (text, filename): a Template built again from the
# same text (per request, or by several Render objects) is not recompiled.
_CACHE_SIZE = 512


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled(text: str, filename: str) -> CodeType:
    return compile_text(text, filename)


class Template:
    """A compiled template: ``Template(text, filename=, filter=, globals=, builtins=)(*args)``."""

    CONTENT_TYPES = {
        ".html": "text/html; charset=utf-8",
        ".xhtml": "application/xhtml+xml; charset=utf-8",
        ".txt": "text/plain",
    }
    FILTERS: dict[str, Callable[[Any], str]] = {
        ".html": websafe, ".xhtml": websafe, ".xml": websafe,
    }
    #: Names every template sees unless built with its own ``globals=``.
    globals: dict[str, Any] = {}

    def __init__(
        self,
        text: str,
        filename: str = "<template>",
        filter: Callable[[Any], Any] | None = None,
        globals: dict[str, Any] | None = None,
        builtins: dict[str, Any] | None = None,
        extensions: list[Any] | None = None,
    ) -> None:
        if extensions:
            raise NotImplementedError("web.template: parser extensions are not supported")
        self.filename = filename
        code = _compiled(text, filename)
        ext = os.path.splitext(filename)[1]
        self.filter = filter or self.FILTERS.get(ext)
        self.content_type = self.CONTENT_TYPES.get(ext)
        # A non-HTML template called while serving a request sets its type
        # (web.py sets it for every template; HTML is the default for a
        # returned TemplateResult anyway, and a JSON handler that renders an
        # HTML fragment must not turn its answer into text/html).
        self._sets_type = self.content_type is not None and ext != ".html"
        env = make_env(self.globals if globals is None else globals,
                       TEMPLATE_BUILTINS if builtins is None else builtins, self.filter)
        exec(code, env)
        self.t: Callable[..., TemplateResult] = env["__template__"]

    def __call__(self, *args: Any, **kwargs: Any) -> TemplateResult:
        """Render with the template's ``$def with`` arguments."""
        if self._sets_type:
            self._set_content_type()
        return self.t(*args, **kwargs)

    def _set_content_type(self) -> None:
        c = current_or_none()
        if c is None:
            return  # not serving a request
        if not c.has_content_type:
            header("Content-Type", self.content_type)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.filename}>"


def _reload_on() -> bool:
    return bool(config.get("debug") or config.get("reload"))


def _signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class Render:
    """``render = web.template.render("templates")``: templates as attributes, sub-directories too.

    ``cache=None`` (default) compiles each file once and, only while
    ``web.config.debug`` or the dev server's reload is on, recompiles it when
    it changes; ``cache=True`` never looks at the file again, ``cache=False``
    always checks. ``base="layout"`` passes every page through ``layout``.
    """

    def __init__(self, loc: str = "templates", cache: bool | None = None,
                 base: Any = None, **keywords: Any) -> None:
        self._loc = loc
        self._keywords = keywords
        self._cache_mode = cache
        self._cache: dict[str, tuple[Any, str, tuple[int, int] | None]] = {}
        if base and not callable(base):
            name = base
            self._base: Callable[[Any], Any] | None = lambda page: self._template(name)(page)
        else:
            self._base = base

    def _add_global(self, obj: Any, name: str | None = None) -> None:
        """Add ``obj`` to the globals of templates loaded from now on."""
        self._keywords.setdefault("globals", {})[name or obj.__name__] = obj

    def _checks_files(self) -> bool:
        mode = self._cache_mode
        return _reload_on() if mode is None else not mode

    def _path_of(self, name: str) -> str:
        # SECURITY: a template name is one file name inside ``loc``: no path
        # separator, no "..", no hidden file, no NUL, so neither
        # ``getattr(render, user_input)`` nor ``render._template("../x")``
        # reads outside the directory. No glob either: "*" is not a wildcard.
        if (not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name
                or (os.altsep and os.altsep in name)):
            raise AttributeError(f"No template named {name!r}")
        return os.path.join(self._loc, name)

    def _findfile(self, name: str) -> str | None:
        prefix = name + "."
        try:
            entries = os.listdir(self._loc)
        except OSError:
            return None
        matches = sorted(e for e in entries if e.startswith(prefix) and not e.endswith("~")
                         and os.path.isfile(os.path.join(self._loc, e)))
        if matches:
            return os.path.join(self._loc, matches[0])
        exact = os.path.join(self._loc, name)
        return exact if os.path.isfile(exact) else None

    def _load_template(self, name: str) -> tuple[Any, str, tuple[int, int] | None]:
        path = self._path_of(name)
        if os.path.isdir(path):
            sub = Render(path, cache=self._cache_mode, base=self._base, **self._keywords)
            return sub, path, None
        found = self._findfile(name)
        if found is None:
            raise AttributeError(f"No template named {name}")
        signature = _signature(found)
        with open(found, encoding="utf-8") as f:
            text = f.read()
        return Template(text, filename=found, **self._keywords), found, signature

    def _template(self, name: str) -> Any:
        entry = self._cache.get(name)
        # PERF: in production (no debug, no reload) a cached template is
        # returned without touching the file system.
        if entry is not None and (entry[2] is None or not self._checks_files()
                                  or _signature(entry[1]) == entry[2]):
            return entry[0]
        entry = self._load_template(name)
        self._cache[name] = entry
        return entry[0]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # copy, pickle and friends probe for these
        t = self._template(name)
        base = self._base
        if base and isinstance(t, Template):
            def template(*args: Any, **kwargs: Any) -> Any:
                return base(t(*args, **kwargs))

            return template
        return t


render = Render


def frender(path: str, **keywords: Any) -> Template:
    """Compile the template file at ``path`` (keywords as for :class:`Template`)."""
    with open(path, encoding="utf-8") as f:
        return Template(f.read(), filename=path, **keywords)

