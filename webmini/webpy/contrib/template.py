"""``web.contrib.template``: Jinja2 behind web.py's ``render_jinja`` interface.

Imported as in web.py, ``from webmini.contrib.template import render_jinja``
(the same module object as ``webmini.webpy.contrib.template``).

``render = render_jinja("templates")`` then ``render.hello(name="x")``
renders ``templates/hello.html``. Needs Jinja2: ``pip install webmini[jinja]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webmini._extras import require

__all__ = ["render_jinja"]


class render_jinja:  # noqa: N801 (web.py's name)
    """Jinja2 templates as attributes: ``render_jinja("templates").hello(name="x")``.

    Positional and keyword arguments go to ``jinja2.FileSystemLoader``, except
    ``extensions``, ``globals`` and ``autoescape``. Unlike web.py, autoescape
    is on for ``.html``/``.htm``/``.xml`` files unless ``autoescape=`` says
    otherwise: a value printed into a page is escaped, as with ``$x`` in
    Templetor.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with require("jinja", "webmini.contrib.template.render_jinja"):
            import jinja2
        extensions = kwargs.pop("extensions", [])
        globals_ = kwargs.pop("globals", {})
        # SECURITY: escape by default, as Templetor does for .html files.
        autoescape = kwargs.pop("autoescape", jinja2.select_autoescape())
        self._lookup = jinja2.Environment(
            loader=jinja2.FileSystemLoader(*args, **kwargs), extensions=extensions,
            autoescape=autoescape,
        )
        self._lookup.globals.update(globals_)

    def __getattr__(self, name: str) -> Callable[..., str]:
        if name.startswith("__"):
            raise AttributeError(name)
        # As in web.py, every template ends with .html; Jinja2's loader
        # refuses names that climb out of its directories ("..").
        return self._lookup.get_template(name + ".html").render  # type: ignore[no-any-return]
