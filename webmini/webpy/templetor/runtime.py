"""What compiled templates call at run time: escaping, ``loop``, ``TemplateResult``, builtins."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from webmini.webpy.templetor.sandbox import (
    SAFE_FORMATS,
    SecurityError,
    checked_format,
    checked_format_map,
    checked_key,
    format_attribute,
)

__all__ = [
    "TEMPLATE_BUILTINS", "ForLoop", "ForLoopContext", "TemplateResult", "make_env", "text",
    "websafe",
]

# web.py's restricted builtins: what a template may call by name (web.py
# 0.76's list, minus its real ``__import__``). Nothing here reaches code,
# files, attributes by name or namespaces: no open, getattr, vars, type...
TEMPLATE_BUILTIN_NAMES = (
    "dict", "enumerate", "float", "int", "bool", "list", "long", "reversed", "set", "slice",
    "tuple", "xrange", "abs", "all", "any", "callable", "chr", "cmp", "divmod", "filter", "hex",
    "id", "isinstance", "iter", "len", "max", "min", "oct", "ord", "pow", "range", "round",
    "True", "False", "None",
)

# Modules C code imports lazily while a template runs (datetime's strftime,
# strptime, timetuple, date.today import time and _strptime through the
# running frame's ``__import__``).
_C_IMPORTS = frozenset(("time", "_strptime"))


def _import_for_c_code(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> None:
    """The template ``__import__``: loads only what C code asks for, and returns nothing."""
    # SECURITY: web.py hands templates the real __import__. C code (through
    # PyImport_Import) ignores what __import__ returns and reads sys.modules,
    # so this one loads only a few stdlib modules and gives none back.
    if name not in _C_IMPORTS or level:
        raise SecurityError(f"import of {name!r} is denied in templates")
    import importlib

    importlib.import_module(name)


def _template_builtins() -> dict[str, Any]:
    # Imported here: the real builtins module is no global of this module.
    import builtins

    found = {name: getattr(builtins, name) for name in TEMPLATE_BUILTIN_NAMES
             if name in builtins.__dict__}
    return {**found, "__import__": _import_for_c_code}


TEMPLATE_BUILTINS: dict[str, Any] = _template_builtins()


def text(value: Any) -> Any:
    """A value as template text, as web.py 0.76 converts it (``None`` is empty)."""
    # PERF: exact str first: most values are.
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return ""
    if cls is TemplateResult:
        return value["__body__"]  # what str() gives, without probing for __next__
    if value and hasattr(value, "__next__"):  # web.py lists an iterator's items
        return [text(item) if item is not None else "None" for item in value]
    return str(value)


def websafe(value: Any) -> str:
    """HTML-escape ``value`` exactly as web.py's ``websafe`` (``&<>'"``; ``None`` is empty)."""
    # PERF: most printed strings hold nothing to escape: five ``in`` tests
    # (no method calls) answer that twice as fast as five replace() calls,
    # which beat a regex or translate() when there is something to replace.
    cls = value.__class__
    if cls is str:
        if "&" in value or "<" in value or ">" in value or "'" in value or '"' in value:
            return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
                .replace("'", "&#39;").replace('"', "&quot;")
        return value
    if cls is int:
        return str(value)
    if value is None:
        return ""
    if cls is bytes:
        value = value.decode("utf-8")
    elif cls is not str:
        value = str(value)
    return websafe(value)


_NEVER_ESCAPED = frozenset((int, float, bool))


def _html_escape(value: Any) -> str:
    # ``$x`` with the html filter: web.py converts with safestr, then websafe.
    cls = value.__class__
    if cls is str:
        if "&" in value or "<" in value or ">" in value or "'" in value or '"' in value:
            return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
                .replace("'", "&#39;").replace('"', "&quot;")
        return value
    if cls in _NEVER_ESCAPED:
        return str(value)  # digits, signs, ".", "e", "inf", "nan", True/False
    if value is None:
        return ""
    converted = text(value)
    if converted.__class__ is not str:
        converted = str(converted)
    return websafe(converted)


class ForLoopContext:
    """One running ``$for``: its position, length and the loop around it."""

    __slots__ = ("_forloop", "parent", "index", "length")

    def __init__(self, forloop: ForLoop, parent: ForLoopContext | None) -> None:
        self._forloop = forloop
        self.parent = parent

    def run(self, seq: Iterable[Any]) -> Iterator[Any]:
        """Yield ``seq``'s items, counting them; pop the loop stack once exhausted."""
        try:
            self.length = len(seq)  # type: ignore[arg-type]
        except Exception:
            self.length = 0
        self.index = 0
        for item in seq:
            self.index += 1
            yield item
        # web.py pops the top of the stack, whichever loop it is: kept, so a
        # ``$break`` out of an inner loop leaves ``loop`` as web.py does.
        forloop = self._forloop
        top = forloop._ctx
        forloop._ctx = top.parent if top is not None else None

    @property
    def index0(self) -> int:
        """Zero-based position."""
        return self.index - 1

    @property
    def first(self) -> bool:
        """True on the first item."""
        return self.index == 1

    @property
    def last(self) -> bool:
        """True on the last item (when the sequence has a length)."""
        return self.index == self.length

    @property
    def odd(self) -> bool:
        """True on items 1, 3, 5..."""
        return self.index % 2 == 1

    @property
    def even(self) -> bool:
        """True on items 2, 4, 6..."""
        return self.index % 2 == 0

    @property
    def parity(self) -> str:
        """``"odd"`` or ``"even"``."""
        return "even" if self.index % 2 == 0 else "odd"

    @property
    def revindex0(self) -> int:
        """Items left after this one."""
        return self.length - self.index

    @property
    def revindex(self) -> int:
        """Items left including this one."""
        return self.length - self.index + 1


def _delegate(name: str) -> property:
    def get(self: ForLoop) -> Any:
        ctx = self._ctx
        if ctx is None:
            raise AttributeError(name)
        return getattr(ctx, name)

    get.__doc__ = f"The innermost running loop's ``{name}``."
    return property(get)


class ForLoop:
    """``loop`` in a template: the innermost running ``$for``'s ``index``, ``parity``..."""

    __slots__ = ("_ctx",)

    def __init__(self) -> None:
        self._ctx: ForLoopContext | None = None

    def setup(self, seq: Iterable[Any]) -> Iterator[Any]:
        """Start a loop over ``seq`` (the compiled ``$for`` calls this)."""
        ctx = self._ctx = ForLoopContext(self, self._ctx)
        return ctx.run(seq)

    @property
    def index(self) -> int:
        """One-based position in the innermost loop."""
        ctx = self._ctx
        if ctx is None:
            raise AttributeError("index")
        return ctx.index

    @property
    def parity(self) -> str:
        """``"odd"`` or ``"even"`` in the innermost loop."""
        ctx = self._ctx
        if ctx is None:
            raise AttributeError("parity")
        return "even" if ctx.index % 2 == 0 else "odd"

    index0 = _delegate("index0")
    first = _delegate("first")
    last = _delegate("last")
    odd = _delegate("odd")
    even = _delegate("even")
    revindex0 = _delegate("revindex0")
    revindex = _delegate("revindex")
    length = _delegate("length")
    parent = _delegate("parent")


class TemplateResult(dict[str, Any]):
    """A template's output: ``str()`` is the body (``["__body__"]``), ``$var``s are keys too."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        self.setdefault("__body__", "")

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc

    def extend(self, parts: Iterable[str]) -> None:
        """Append ``parts`` to the body."""
        self["__body__"] = (self["__body__"] or "") + "".join(parts)

    def __str__(self) -> str:
        return self["__body__"]  # type: ignore[no-any-return]

    def __html__(self) -> str:
        """The body, ready to send as HTML (it was escaped when rendered)."""
        return self["__body__"]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<TemplateResult: {dict.__repr__(self)}>"


# PERF: compiled templates make their result without running __init__;
# _finish sets the body.
_new_result = functools.partial(dict.__new__, TemplateResult)


def _finish(result: TemplateResult, parts: list[str]) -> TemplateResult:
    body = result.get("__body__")
    value = "".join(parts)
    result["__body__"] = body + value if body else value
    return result


def _join(*items: str) -> str:
    return "".join(items)


def make_env(
    globals_: dict[str, Any], builtins: dict[str, Any], filter: Callable[[Any], Any] | None,
) -> dict[str, Any]:
    """The namespace a compiled template runs in: its globals, builtins and helpers."""
    if filter is None:
        escape: Callable[[Any], Any] = text
    elif filter is websafe:
        escape = _html_escape
    else:
        def escape(value: Any) -> Any:
            return filter(text(value))
    return dict(
        globals_,
        __builtins__=builtins,
        ForLoop=ForLoop,
        TemplateResult=TemplateResult,
        new_result_=_new_result,
        escape_=escape,
        text_=text,
        join_=_join,
        finish_=_finish,
        # The compiler routes computed subscripts and every .format /
        # .format_map through these (names a template cannot write).
        __key__=checked_key,
        __format__=checked_format,
        __format_map__=checked_format_map,
        __format_attr__=format_attribute,
        __safe_formats__=SAFE_FORMATS,
        __strtype__=str,
        __inttype__=int,
    )
