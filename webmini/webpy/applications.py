"""web.py's other application kinds: ``subdir_application``, ``subdomain_application``,
``auto_application``. Reached as ``web.<name>`` through :mod:`webmini.webpy.http`.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from webmini import errors
from webmini.app import application
from webmini.ctx import RequestContext
from webmini.errors import HTTPError
from webmini.routing import pairs

__all__ = ["subdir_application", "subdomain_application", "auto_application"]

#: web.py's name for an application mounted under a directory: the same class.
subdir_application = application


class subdomain_application(application):  # noqa: N801 - web.py's name
    """An application whose URL table maps host names (regexes) to apps or handlers.

    ``subdomain_application(("(.*)\\.example\\.org", "user_site", "www\\.example\\.org",
    main_app), globals())``; the port is ignored and each pattern must match
    the whole host name.
    """

    def __init__(self, mapping: Any = (), fvars: dict[str, Any] | None = None,
                 autoreload: bool | None = None, **kw: Any) -> None:
        super().__init__((), fvars, autoreload, **kw)
        # SECURITY: fullmatch: "example.org.evil.test" must not match "example\.org".
        self.host_table = [(re.compile(pattern, re.IGNORECASE), target)
                           for pattern, target in pairs(mapping)]

    def handle(self, c: RequestContext) -> Any:
        """Pick the target by host name, then let it handle the request."""
        host = c.host.rsplit(":", 1)[0] if not c.host.endswith("]") else c.host
        for pattern, target in self.host_table:
            m = pattern.fullmatch(host)
            if m is None:
                continue
            args = tuple(m.groups())
            if isinstance(target, application):
                c.app_stack.append(target)
                return target.handle_with_processors(c)
            if isinstance(target, str):
                name = m.expand(target) if "\\" in target else target
                resolved = self.fvars.get(name)
                if resolved is None and "." in name:
                    module, _, attr = name.rpartition(".")
                    resolved = getattr(importlib.import_module(module), attr)
                target = resolved
            if isinstance(target, type):
                return self._call_class(c, target, args)
            if callable(target):
                return target(*args)
        missing = c.call_hook(c.hook_app("notfound"), "notfound")
        raise missing if isinstance(missing, HTTPError) else errors.NotFound(missing)


class auto_application(application):  # noqa: N801 - web.py's name
    """An application whose handler classes register themselves.

    Subclass ``app.page``; the class is mounted at its ``path`` attribute
    (``"/" + class name`` when unset).
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__((), {}, **kw)
        app = self

        class metapage(type):
            def __init__(cls, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> None:
                type.__init__(cls, name, bases, attrs)
                path = attrs.get("path", "/" + name)
                if path is not None:
                    app.add_mapping(path, cls)

        class page(metaclass=metapage):
            path: str | None = None

        self.page = page
