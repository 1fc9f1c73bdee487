"""Make web.py's module names resolve under ``webmini`` without loading them early.

``web.template``, ``from webmini import form`` and ``import webmini.db`` all
reach ``webmini.webpy.<name>``, one module object under two names; so does
web.py's ``web.contrib.template`` (``from webmini.contrib.template import
render_jinja``), which lives in ``webmini.webpy.contrib.template``. Top-level
names web.py re-exports (``web.database``, ``web.websafe``, ``web.SQLLiteral``)
are listed in ``WEBPY_EXPORTS``, module by module, so ``web.<name>`` imports
exactly the module that defines it, and a name in no list (a typo) raises
AttributeError without importing anything (tests/test_layout.py checks the
lists against the modules' ``__all__``). ``import webmini.db`` needs a finder
on ``sys.meta_path``: ``webmini/__init__.py`` installs it, in plain sight.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

#: web.py's module names, in the order their ``__all__`` is searched.
WEBPY_MODULES = ("utils", "http", "net", "db", "template", "form", "session")

#: web.py's modules below a package of their own: imported by name, never searched.
WEBPY_SUBMODULES = ("contrib.template",)
WEBPY_EXPORTS: dict[str, tuple[str, ...]] = {
    "utils": (
        "Counter", "IterBetter", "Memoize", "Storage", "ThreadedDict", "TimeoutError",
        "autoassign", "commify", "cond", "counter", "dateify", "datestr", "denumify", "dictadd",
        "dictfind", "dictfindall", "dictincr", "dictreverse", "group", "intget", "iterbetter",
        "iters", "listget", "lstrips", "memoize", "nthstr", "numify", "re_compile", "re_subm",
        "requeue", "restack", "rstrips", "safeiter", "safestr", "safeunicode", "safewrite",
        "sendmail", "storage", "storify", "strips", "threadeddict", "timelimit", "to36", "uniq",
        "utf8"
    ),
    "http": (
        "PreconditionFailed", "UnavailableForLegalReasons", "auto_application", "changequery",
        "debug", "debugerror", "djangoerror", "emailerrors", "expires", "lastmodified",
        "modified", "preconditionfailed", "prefixurl", "rawinput", "subdir_application",
        "subdomain_application", "unavailableforlegalreasons", "unsupportedmediatype", "url"
    ),
    "net": (
        "htmlquote", "htmlunquote", "httpdate", "parsehttpdate", "urlquote", "validaddr",
        "validip", "validip6addr", "validipaddr", "validipport", "websafe"
    ),
    "db": (
        "DB", "DBContext", "SQLLiteral", "SQLParam", "SQLProducer", "SQLQuery",
        "TransactionError", "UnknownDB", "UnknownParamstyle", "database", "reparam", "sqllist",
        "sqlliteral", "sqlors", "sqlparam", "sqlquote"
    ),
    "template": (
        "ForLoop", "ParseError", "Render", "SecurityError", "Template", "TemplateResult",
        "frender", "render"
    ),
    "form": (
    ),
    "session": (
    ),
}

#: web.py's top-level name -> the module (of ``WEBPY_MODULES``) that exports it.
WEBPY_NAMES: dict[str, str] = {
    name: module for module, names in WEBPY_EXPORTS.items() for name in names
}

_ALIAS_PREFIX = "webmini."
_TARGET_PREFIX = "webmini.webpy."


def load_module(name: str) -> ModuleType:
    """Import web.py module ``name`` (``"form"``, ``"contrib.template"``) and register its alias."""
    module = importlib.import_module(_TARGET_PREFIX + name)
    sys.modules.setdefault(_ALIAS_PREFIX + name, module)
    return module


def find_name(name: str) -> Any:
    """Return web.py's top-level ``name`` from the one module that exports it."""
    module = WEBPY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'webmini' has no attribute {name!r}")
    return getattr(load_module(module), name)


class _AliasLoader(importlib.abc.Loader):
    """Loads ``webmini.<name>`` as the already-imported ``webmini.webpy.<name>``."""

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        """Return the real module, so both names share one object."""
        return load_module(spec.name[len(_ALIAS_PREFIX):])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the real module already ran."""


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Answers ``import webmini.<web.py module>`` with the alias loader."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        """Claim only ``webmini.db``, ``webmini.contrib.template``... and nothing else."""
        if not fullname.startswith(_ALIAS_PREFIX):
            return None
        leaf = fullname[len(_ALIAS_PREFIX):]
        if leaf not in WEBPY_MODULES and leaf not in WEBPY_SUBMODULES:
            return None
        if importlib.util.find_spec(_TARGET_PREFIX + leaf) is None:
            return None
        return ModuleSpec(fullname, _AliasLoader())


def install() -> None:
    """Register the finder once per process."""
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
