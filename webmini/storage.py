"""Attribute-access dictionaries: web.py's ``storage`` and ``storify``."""

from __future__ import annotations

from typing import Any

_MISSING = object()


class Storage(dict[str, Any]):
    """A dict whose keys are also attributes: ``s.a`` is ``s["a"]``.

    Names of the class (``get``, ``items``...) always mean the methods: a
    form field called ``get`` cannot shadow ``storage.get()``.
    """

    __slots__ = ()
    _class_names: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._class_names = frozenset(dir(cls))

    # PERF: __getattribute__ looks in the dict first; a __getattr__ fallback
    # would run only after the default lookup raised AttributeError, which
    # made every ``i.name`` five times slower.
    def __getattribute__(self, key: str) -> Any:
        if key not in type(self)._class_names:
            value = dict.get(self, key, _MISSING)
            if value is not _MISSING:
                return value
        return object.__getattribute__(self, key)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __repr__(self) -> str:
        return "<Storage " + dict.__repr__(self) + ">"


Storage._class_names = frozenset(dir(Storage))

storage = Storage


def _value_of(x: Any) -> Any:
    # web.py: an object with a ``value`` attribute (an upload, a form field)
    # gives that value, unless its default asks for the object (a dict).
    return getattr(x, "value", x)


def storify(mapping: Any, *requireds: str, _unicode: bool = True, **defaults: Any) -> Storage:
    """Build a Storage from a mapping of lists, applying web.py's default rules.

    A key whose default is a list keeps every value (a single value becomes
    a one-item list); any other key keeps the last value. A value with a
    ``value`` attribute stands for that value, unless the key's default is
    a dict. A default of ``()`` wraps the value in a tuple. A key listed in
    ``requireds`` that is missing raises KeyError.
    """
    result = Storage()
    for key in (*requireds, *mapping.keys()):
        value = mapping[key]
        default = defaults.get(key)
        if isinstance(value, list):
            value = [_value_of(x) for x in value] if isinstance(default, list) else (
                value[-1] if value else None)
        if not isinstance(default, dict):
            value = _value_of(value)
        if isinstance(default, list) and not isinstance(value, list):
            value = [value]
        result[key] = value
    for key, default in defaults.items():
        value = result.get(key, default)
        if default == () and not isinstance(value, tuple):
            value = (value,)
        result[key] = value
    return result
