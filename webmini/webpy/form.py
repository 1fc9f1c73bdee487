"""web.py's ``web.form``: HTML forms that render, fill and validate themselves.

The HTML is byte-for-byte web.py 0.76's (tests/test_webpy_form.py renders
both side by side). Every attribute value and label is HTML-escaped; only
``pre``/``post`` and a Button's ``html`` are raw, since they are markup the
application writes itself. Where web.py would crash on odd input (a regexp
validator given ``None``), the field is simply invalid.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from typing import Any

from webmini.storage import Storage
from webmini.webpy.net import websafe
from webmini.webpy.utils import safestr, safeunicode

__all__: list[str] = []  # web.py keeps these under web.form only

# SECURITY: attribute names are written unquoted; anything but a plain name
# (a space, quote, ``>``, ``=``, ``/``) could open a new attribute or tag.
_ATTR_NAME = re.compile(r"[A-Za-z_:][-A-Za-z0-9_:.]*")


def attrget(obj: Any, attr: str, value: Any = None) -> Any:
    """Return ``obj[attr]`` for a mapping, else ``obj.attr``, else ``value``."""
    try:
        if hasattr(obj, "keys") and attr in obj:
            return obj[attr]
    except TypeError:
        pass
    if hasattr(obj, attr):
        return getattr(obj, attr)
    return value


class AttributeList(dict[str, Any]):
    """An input's HTML attributes, rendered sorted by name with escaped values."""

    def copy(self) -> AttributeList:
        """Return a copy that is still an AttributeList."""
        return AttributeList(self)

    def __str__(self) -> str:
        parts = []
        for name in sorted(self):
            if not _ATTR_NAME.fullmatch(name):
                raise ValueError(f"invalid HTML attribute name {name!r}")
            parts.append(f'{name}="{websafe(self[name])}"')
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"<attrs: {str(self)!r}>"


def _note_html(note: Any) -> str:
    return f'<strong class="wrong">{websafe(note)}</strong>' if note else ""


class Form:
    """An HTML form: ``Form(Textbox("name", notnull), validators=[...])``."""

    def __init__(self, *inputs: Input, **kw: Any) -> None:
        self.inputs = inputs
        self.valid = True
        self.note: Any = None
        self.validators: list[Validator] = kw.pop("validators", [])

    def __call__(self, x: Any = None) -> Form:
        """Return a fresh copy of the form (validated against ``x`` if given)."""
        fresh = copy.deepcopy(self)
        if x:
            fresh.validates(x)
        return fresh

    def render(self) -> str:
        """Render the form as a table, one row per input."""
        rows = [_note_html(self.note), "<table>\n"]
        for i in self.inputs:
            html = safeunicode(i.pre) + i.render() + _note_html(i.note) + safeunicode(i.post)
            if i.is_hidden():
                rows.append(f'    <tr style="display: none;"><th></th><td>{html}</td></tr>\n')
            else:
                label = f'<label for="{websafe(i.id)}">{websafe(i.description)}</label>'
                rows.append(f"    <tr><th>{label}</th><td>{html}</td></tr>\n")
        rows.append("</table>")
        return "".join(rows)

    def render_css(self) -> str:
        """Render labels and inputs without a table, for styling with CSS."""
        out = [_note_html(self.note)]
        for i in self.inputs:
            if not i.is_hidden():
                out.append(f'<label for="{websafe(i.id)}">{websafe(i.description)}</label>')
            out += [i.pre, i.render(), _note_html(i.note), i.post, "\n"]
        return "".join(out)

    def rendernote(self, note: Any) -> str:
        """Return ``note`` as web.py's ``<strong class="wrong">`` element (or "")."""
        return _note_html(note)

    def validates(self, source: Any = None, _validate: bool = True, **kw: Any) -> bool:
        """Check ``source`` (default: ``web.input()``) against every validator."""
        if not (source or kw):
            from webmini.request import input as web_input

            source = web_input()
        source = source or kw
        for i in self.inputs:
            value = attrget(source, i.name)
            if not _validate:
                i.set_value(value)
            elif not i.validate(value):
                # web.py 0.76 stops at the first invalid input and shows its
                # note on the form as well.
                self.note = i.note
                return False
        if not _validate:
            return True
        self.valid = self._validate(source)
        return self.valid

    def _validate(self, value: Any) -> bool:
        self.value = value
        for v in self.validators:
            if not v.valid(value):
                self.note = v.msg
                return False
        return True

    def fill(self, source: Any = None, **kw: Any) -> bool:
        """Set the inputs' values from ``source`` without validating."""
        return self.validates(source, _validate=False, **kw)

    def __getitem__(self, name: str) -> Input:
        for x in self.inputs:
            if x.name == name:
                return x
        raise KeyError(name)

    def __getattr__(self, name: str) -> Input:
        # Read inputs from __dict__ so copy.deepcopy (no __init__) does not loop.
        for x in self.__dict__.get("inputs") or ():
            if x.name == name:
                return x  # type: ignore[no-any-return]
        raise AttributeError(name)

    def get(self, name: str, default: Any = None) -> Any:
        """Return input ``name`` or ``default``."""
        try:
            return self[name]
        except KeyError:
            return default

    @property
    def d(self) -> Storage:
        """The inputs' values by name."""
        return Storage((i.name, i.get_value()) for i in self.inputs)


class Input:
    """A generic ``<input>``; pass ``type=`` when using it directly."""

    def __init__(self, name: str, *validators: Validator, **attrs: Any) -> None:
        self.name = name
        self.validators = validators
        self.attrs = a = AttributeList(attrs)
        self.type = a.pop("type", None)
        self.description = a.pop("description", name)
        self.value = a.pop("value", None)
        self.pre = a.pop("pre", "")
        self.post = a.pop("post", "")
        self.note: Any = None
        self.id = a.setdefault("id", self.get_default_id())
        if "class_" in a:
            a["class"] = a.pop("class_")

    def is_hidden(self) -> bool:
        """Whether the input is rendered without a label."""
        return False

    def get_type(self) -> str:
        """The ``type`` attribute."""
        if self.type is None:
            raise AttributeError("missing attribute 'type'")
        return str(self.type)

    def get_default_id(self) -> str:
        """The ``id`` used when none is given."""
        return self.name

    def validate(self, value: Any) -> bool:
        """Store ``value`` and run the validators; the first failure sets ``note``."""
        self.set_value(value)
        for v in self.validators:
            if not v.valid(value):
                self.note = v.msg
                return False
        return True

    def set_value(self, value: Any) -> None:
        """Set the value rendered next time."""
        self.value = value

    def get_value(self) -> Any:
        """The current value."""
        return self.value

    def render(self) -> str:
        """Render the element."""
        attrs = self.attrs.copy()
        attrs["type"] = self.get_type()
        if self.value is not None:
            attrs["value"] = self.value
        attrs["name"] = self.name
        attrs["id"] = self.id
        return f"<input {attrs}/>"

    def rendernote(self, note: Any) -> str:
        """Return ``note`` as an HTML element (or "")."""
        return _note_html(note)

    def addatts(self) -> str:
        """The attributes with a leading space (web.py's old API)."""
        return " " + str(self.attrs)


def _typed(name: str, kind: str, doc: str) -> type[Input]:
    def get_type(self: Input) -> str:
        return kind

    return type(name, (Input,), {"get_type": get_type, "__doc__": doc})


Textbox = _typed("Textbox", "text", "A text input.")
Password = _typed("Password", "password", "A password input.")
File = _typed("File", "file", "A file input (the form needs enctype=multipart/form-data).")
Telephone = _typed("Telephone", "tel", "A telephone-number input.")
Email = _typed("Email", "email", "An email input.")
Date = _typed("Date", "date", "A date input.")
Time = _typed("Time", "time", "A time input.")
Search = _typed("Search", "search", "A search input.")
Url = _typed("Url", "url", "A URL input.")
Number = _typed("Number", "number", "A number input.")
Range = _typed("Range", "range", "A range (slider) input.")
Color = _typed("Color", "color", "A colour input.")


class Hidden(Input):
    """A hidden input, rendered in a hidden table row."""

    def is_hidden(self) -> bool:
        """Always True."""
        return True

    def get_type(self) -> str:
        """``hidden``."""
        return "hidden"


class Textarea(Input):
    """A ``<textarea>``; its value is the escaped element content."""

    def render(self) -> str:
        """Render the element."""
        attrs = self.attrs.copy()
        attrs["name"] = self.name
        return f"<textarea {attrs}>{websafe(self.value or '')}</textarea>"


def _pair(arg: Any) -> tuple[Any, Any]:
    if isinstance(arg, (tuple, list)):
        value, desc = arg
        return value, desc
    return arg, arg


class _Choices(Input):
    """An input over a list of choices: ``Cls(name, args, *validators, **attrs)``."""

    def __init__(self, name: str, args: Iterable[Any], *validators: Validator,
                 **attrs: Any) -> None:
        self.args = args
        super().__init__(name, *validators, **attrs)


class Dropdown(_Choices):
    """A ``<select>`` of ``args`` (values, or ``(value, label)`` pairs)."""

    def render(self) -> str:
        """Render the element."""
        attrs = self.attrs.copy()
        attrs["name"] = self.name
        options = "".join(self._render_option(arg) for arg in self.args)
        return f"<select {attrs}>\n{options}</select>\n"

    def _render_option(self, arg: Any, indent: str = "  ") -> str:
        value, desc = _pair(arg)
        value = safestr(value)
        if isinstance(self.value, (tuple, list)):
            selected = value in [safestr(x) for x in self.value]
        else:
            selected = safestr(self.value) == value
        flag = ' selected="selected"' if selected else ""
        return f'{indent}<option{flag} value="{websafe(value)}">{websafe(desc)}</option>\n'


class GroupedDropdown(Dropdown):
    """A ``<select>`` with ``<optgroup>``s: ``args`` is ``[(label, options), ...]``."""

    def render(self) -> str:
        """Render the element."""
        attrs = self.attrs.copy()
        attrs["name"] = self.name
        out = [f"<select {attrs}>\n"]
        for label, options in self.args:
            out.append(f'  <optgroup label="{websafe(label)}">\n')
            out += [self._render_option(arg, indent="    ") for arg in options]
            out.append("  </optgroup>\n")
        out.append("</select>\n")
        return "".join(out)


class Radio(_Choices):
    """A group of radio buttons, one per item of ``args``."""

    def render(self) -> str:
        """Render the buttons in a ``<span>``."""
        out = ["<span>"]
        for idx, arg in enumerate(self.args, start=1):
            value, desc = _pair(arg)
            attrs = self.attrs.copy()
            attrs.update(name=self.name, type="radio", value=value, id=f"{self.name}{idx}")
            if self.value == value:
                attrs["checked"] = "checked"
            out.append(f"<input {attrs}/> {websafe(desc)}")
        out.append("</span>")
        return "".join(out)


class Checkbox(Input):
    """A checkbox; its value is whether it is checked."""

    def __init__(self, name: str, *validators: Validator, **attrs: Any) -> None:
        self.checked = attrs.pop("checked", False)
        super().__init__(name, *validators, **attrs)

    def get_default_id(self) -> str:
        """``name_value``, spaces as underscores."""
        return self.name + "_" + safestr(self.value or "").replace(" ", "_")

    def render(self) -> str:
        """Render the element."""
        attrs = self.attrs.copy()
        attrs.update(type="checkbox", name=self.name, value=self.value)
        if self.checked:
            attrs["checked"] = "checked"
        return f"<input {attrs}/>"

    def set_value(self, value: Any) -> None:
        """Check the box when ``value`` is truthy."""
        self.checked = bool(value)

    def get_value(self) -> Any:
        """Whether the box is checked."""
        return self.checked


class Button(Input):
    """A ``<button>``; ``html=`` is its raw inner markup (default: the escaped name)."""

    def __init__(self, name: str, *validators: Validator, **attrs: Any) -> None:
        super().__init__(name, *validators, **attrs)
        self.description = ""

    def render(self) -> str:
        """Render the element."""
        attrs = self.attrs.copy()
        attrs["name"] = self.name
        if self.value is not None:
            attrs["value"] = self.value
        inner = attrs.pop("html", None) or websafe(self.name)
        return f"<button {attrs}>{inner}</button>"


class Datalist(_Choices):
    """A ``<datalist>`` of suggestions for another input."""

    def render(self) -> str:
        """Render the element."""
        attrs = self.attrs.copy()
        attrs["name"] = self.name
        out = [f"<datalist {attrs}>"]
        label = ""
        for arg in self.args:
            if isinstance(arg, (tuple, list)):
                # web.py keeps the last label for later plain items: kept as is.
                label = f' label="{websafe(arg[0])}"'
                value = websafe(arg[1])
            else:
                value = websafe(arg)
            out.append(f'<option{label} value="{value}"/>')
        out.append("</datalist>")
        return "".join(out)


class Validator:
    """A check with a message: ``Validator("Too short", lambda v: len(v) > 3)``.

    Form-level validators get the whole input (``i.password == i.password2``).
    """

    def __init__(self, msg: str, test: Callable[[Any], Any], jstest: Any = None) -> None:
        self.msg = msg
        self.test = test
        self.jstest = jstest

    def __deepcopy__(self, memo: dict[int, Any]) -> Validator:
        return copy.copy(self)

    def valid(self, value: Any) -> bool:
        """Return whether ``value`` passes (an exception in the test means no)."""
        try:
            return bool(self.test(value))
        except Exception:
            return False


#: The field must be non-empty.
notnull = Validator("Required", bool)


class regexp(Validator):  # noqa: N801 - web.py's name
    """The value must match regular expression ``rexp`` (from its start)."""

    def __init__(self, rexp: str, msg: str) -> None:
        self.rexp = re.compile(rexp)
        self.msg = msg

    def valid(self, value: Any) -> bool:
        """Return whether ``value`` matches (a missing value does not)."""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            return False
        return bool(self.rexp.match(value))
