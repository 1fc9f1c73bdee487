"""Templetor's sandbox rules: which attributes and keys a template may reach, checked formatting.

The model is Jinja2's ``SandboxedEnvironment``: an attribute whose name
starts with ``_`` (``__class__``, ``__globals__``...), one of a frame, code
object, traceback, generator, coroutine or async generator (``f_*``,
``co_*``, ``tb_*``, ``gi_*``, ``cr_*``, ``ag_*``), Python 2's ``func_*`` and
``im_*``, and ``mro`` are refused. The compiler applies the rule to every
literal ``obj.name`` (free at render time); the helpers here apply it where
the name is only known at run time: computed subscripts and the fields of a
``str.format``/``format_map`` string.
"""

from __future__ import annotations

import _string  # the parser str.format itself uses: same fields, same errors
import functools
import string
from collections.abc import Iterator
from typing import Any

__all__ = [
    "SAFE_FORMATS", "SandboxedFormatter", "SecurityError", "checked_format", "checked_format_map",
    "checked_key", "format_attribute", "format_fields", "format_refusal", "unsafe_attribute",
    "unsafe_key",
]


class SecurityError(Exception):
    """The template tried something a template may not do (import, exec, ``_`` attributes...)."""


# Frame (f_), code (co_), traceback (tb_), generator (gi_), coroutine (cr_),
# async generator (ag_) internals, Python 2's function/method ones, private names.
UNSAFE_ATTRIBUTE_PREFIXES = ("_", "f_", "co_", "tb_", "gi_", "cr_", "ag_", "func_", "im_")
UNSAFE_ATTRIBUTES = frozenset(("mro",))


def unsafe_attribute(name: str) -> bool:
    """True if a template may not read attribute ``name`` (on any object)."""
    return name.startswith(UNSAFE_ATTRIBUTE_PREFIXES) or name in UNSAFE_ATTRIBUTES


def unsafe_key(key: Any) -> bool:
    """True if a template may not subscript with ``key``: a string starting with ``__``."""
    return isinstance(key, str) and key.startswith("__")


def checked_key(key: Any, /) -> Any:
    """``key``, for a subscript whose key is computed at run time, unless it starts with ``__``."""
    # SECURITY: a key built at run time ('__glo' + 'bals__') escapes the
    # compile-time check on literal keys.
    if isinstance(key, str) and key.startswith("__"):
        raise SecurityError(f"access to key {key!r} is denied")
    return key


def format_fields(fmt: str) -> Iterator[tuple[bool, Any]]:
    """The lookups ``fmt.format(...)`` makes, in order: ``(is_attribute, name)``.

    ``{0.a[b]}`` gives ``(False, 0), (True, "a"), (False, "b")``; fields
    nested in a format spec (``{0:{1.x}}``) are included. Raises
    ``ValueError`` where ``str.format`` would find the string malformed.
    """
    for _, field, spec, _ in _string.formatter_parser(fmt):
        if field is None:
            continue
        first, rest = _string.formatter_field_name_split(field)
        yield False, first
        yield from rest
        if spec and "{" in spec:
            yield from format_fields(spec)


def format_refusal(fmt: str) -> str | None:
    """The first attribute or key in ``fmt``'s fields a template may not reach, or None."""
    for is_attribute, name in format_fields(fmt):
        if unsafe_attribute(name) if is_attribute else unsafe_key(name):
            return str(name)
    return None


# PERF: format strings already found safe, so that a template formatting
# with the same few strings pays one set lookup per call.
SAFE_FORMATS: set[str] = set()
_SAFE_FORMATS_MAX = 1024
_SAFE_FORMAT_LENGTH = 1024


def _checked_format_string(fmt: str) -> bool:
    # A str subclass is checked on its plain text: its own __eq__/__hash__
    # must not pass it off as a string already checked.
    return _checked_text(fmt if fmt.__class__ is str else str.__str__(fmt))


def _checked_text(fmt: str) -> bool:
    # True: every field is safe. False: malformed (str.format will say where).
    if fmt in SAFE_FORMATS:
        return True
    try:
        refused = format_refusal(fmt)
    except ValueError:
        return False
    if refused is not None:
        raise SecurityError(f"access to attribute {refused!r} in a format string is denied")
    if len(fmt) <= _SAFE_FORMAT_LENGTH:  # a long one is checked again on each call
        if len(SAFE_FORMATS) >= _SAFE_FORMATS_MAX:
            SAFE_FORMATS.clear()  # strings built per request must not grow it for ever
        SAFE_FORMATS.add(fmt)
    return True


class SandboxedFormatter(string.Formatter):
    """A ``string.Formatter`` whose field lookups follow the template attribute rule."""

    def __init__(self, mapping: bool = False) -> None:
        """``mapping=True``: format as ``str.format_map`` does (named fields only)."""
        self.mapping = mapping

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        """A positional or named argument (``format_map``: names only, as ``str.format_map``)."""
        if self.mapping and isinstance(key, int):
            raise ValueError("Format string contains positional fields")
        return super().get_value(key, args, kwargs)

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        """Resolve ``field_name`` (``0.a[b]``), refusing unsafe attributes and keys."""
        # SECURITY: "{0.__globals__[sys]}".format(f) walks attributes named
        # inside a string: each step gets the rule literal attributes get.
        first, rest = _string.formatter_field_name_split(field_name)
        if unsafe_key(first):
            raise SecurityError(f"access to key {first!r} in a format string is denied")
        obj = self.get_value(first, args, kwargs)
        for is_attribute, name in rest:
            if is_attribute:
                if unsafe_attribute(name):
                    raise SecurityError(
                        f"access to attribute {name!r} in a format string is denied")
                obj = getattr(obj, name)
            else:
                if unsafe_key(name):
                    raise SecurityError(f"access to key {name!r} in a format string is denied")
                obj = obj[name]
        return obj, first


_FORMATTER = SandboxedFormatter()
_MAP_FORMATTER = SandboxedFormatter(mapping=True)


def _check_format_argument(args: tuple[Any, ...]) -> None:
    # str.format(fmt, ...) or a string.Formatter's format(fmt, ...).
    if args and isinstance(args[0], str) and not _checked_format_string(args[0]):
        format_refusal(args[0])  # raises the ValueError str.format would


def checked_format(obj: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``obj.format(*args, **kwargs)`` with every format field checked (any receiver)."""
    # SECURITY: the format string may be built at run time ("{0.%s}" % name).
    if obj.__class__ is str and obj in SAFE_FORMATS:
        return obj.format(*args, **kwargs)  # PERF: checked once per string, then native
    if isinstance(obj, str):
        if _checked_format_string(obj):
            return obj.format(*args, **kwargs)
        if obj.__class__ is str:  # malformed: fail exactly where str.format would
            return _FORMATTER.vformat(obj, args, kwargs)
        format_refusal(obj)  # raises ValueError
    elif isinstance(obj, string.Formatter) or (isinstance(obj, type) and issubclass(obj, str)):
        _check_format_argument(args)
    return obj.format(*args, **kwargs)


def checked_format_map(obj: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``obj.format_map(mapping)`` with every format field checked (any receiver)."""
    if isinstance(obj, str):
        if _checked_format_string(obj):
            return obj.format_map(*args, **kwargs)
        if obj.__class__ is str and len(args) == 1 and not kwargs:
            return _MAP_FORMATTER.vformat(obj, (), args[0])
        format_refusal(obj)  # raises ValueError
    elif isinstance(obj, type) and issubclass(obj, str):
        _check_format_argument(args)
    return obj.format_map(*args, **kwargs)


_CHECKED_METHODS = {"format": checked_format, "format_map": checked_format_map}


def format_attribute(obj: Any, name: str, /) -> Any:
    """``obj.format`` / ``obj.format_map`` read without calling: a checked callable for strings."""
    if isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str)) or (
            name == "format" and isinstance(obj, string.Formatter)):
        return functools.partial(_CHECKED_METHODS[name], obj)
    return getattr(obj, name)
