"""Make web.py's module names resolve under ``webmini`` without loading them early.

``web.template``, ``from webmini import form`` and ``import webmini.db`` all
reach ``webmini.webpy.<name>``, one module object under two names; so does
web.py's ``web.contrib.template`` (``from webmini.contrib.template import
render_jinja``), which lives in ``webmini.webpy.contrib.template``. Top-level
names web.py re-exports (``web.database``, ``web.websafe``, ``web.SQLLiteral``)
are found in those modules' ``__all__`` on first use. Nothing here imports a
web.py module until a name from it is asked for, so the core stays light.
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

_ALIAS_PREFIX = "webmini."
_TARGET_PREFIX = "webmini.webpy."


def load_module(name: str) -> ModuleType:
    """Import web.py module ``name`` (``"form"``, ``"contrib.template"``) and register its alias."""
    module = importlib.import_module(_TARGET_PREFIX + name)
    sys.modules.setdefault(_ALIAS_PREFIX + name, module)
    return module


def find_name(name: str) -> Any:
    """Return web.py's top-level ``name`` from the module that exports it."""
    for module_name in WEBPY_MODULES:
        try:
            module = load_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == _TARGET_PREFIX + module_name:
                continue  # that module is not written yet
            raise
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module 'webmini' has no attribute {name!r}")


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
