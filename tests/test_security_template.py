"""Templetor as a sandbox: templates compiled from text reach no code, frame, module or secret.

Each attack below rendered a shell command's output, a file or an
environment variable before the sandbox rules (Jinja2's
``SandboxedEnvironment`` model) were applied; each must now be refused with
``SecurityError``, at compile time where the attribute or key is literal,
at run time where it is computed (subscripts, format strings).
"""

from __future__ import annotations

import datetime
import string
import types
from pathlib import Path
from typing import Any

import pytest

from webmini.webpy import template
from webmini.webpy.template import SecurityError
from webmini.webpy.templetor import runtime

SECRET = "s3cr3t-template-sandbox"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """An environment variable no template may print."""
    monkeypatch.setenv("WEBMINI_TEMPLATE_SECRET", SECRET)
    return SECRET


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that exists only if a template managed to run a shell command."""
    return tmp_path / "pwned"


def helper() -> str:
    """Any function an application passes to its templates."""
    return "help"


def attempt(text: str, *args: Any, **globals_: Any) -> SecurityError:
    """Compile and render ``text``; return the SecurityError it must raise."""
    with pytest.raises(SecurityError) as info:
        template.Template(text, globals=globals_)(*args)
    return info.value


# -- code execution through frames, code objects and generators ---------------

def test_generator_frame_to_import_runs_no_command(marker: Path) -> None:
    cmd = f"touch {marker}; id"
    error = attempt(
        f"${{(x for x in [1]).gi_frame.f_builtins['__import__']('os').popen('{cmd}').read()}}")
    assert "gi_frame" in str(error) and "f_builtins" in str(error)
    assert not marker.exists()


def test_generator_frame_globals_to_builtins() -> None:
    error = attempt("${(x for x in [1]).gi_frame.f_globals['__builtins__']}")
    assert "f_globals" in str(error) and "__builtins__" in str(error)


def test_loop_generator_frame_reaches_no_runtime_globals(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    text = ("$for i in [1]:\n"
            f"    ${{loop.setup([1]).gi_frame.f_globals['_builtins'].open('{secret_file}').read()}}")
    error = attempt(text)
    assert "gi_frame" in str(error)
    # Nor through the methods of what the runtime hands to templates.
    for path in ("loop.setup.__globals__", "loop.setup([1]).gi_frame", "ForLoop.setup.__globals__",
                 "escape_.__globals__", "loop.setup([1]).gi_code", "new_result_.func.__self__"):
        attempt(f"$for i in [1]:\n    ${path}")
    # And the runtime module keeps no alias of the real builtins anyway.
    assert "_builtins" not in vars(runtime) and "builtins" not in vars(runtime)


def test_code_blocks_get_the_same_rules(marker: Path) -> None:
    attempt("$code:\n    g = (x for x in [1])\n    b = g.gi_frame.f_builtins\n$b")
    attempt("$code:\n    def gen():\n        yield 1\n    f = gen().gi_frame\n$f")
    attempt(f"$code:\n    i = (x for x in [1]).gi_frame.f_builtins['__import__']\n"
            f"    out = i('os').system('touch {marker}')\n$out")
    attempt("$code:\n    def f():\n        pass\n    g = f.__globals__\n$g")
    assert not marker.exists()


def test_code_objects_and_constants() -> None:
    attempt("${(x for x in [1]).gi_code.co_consts}")
    attempt("$def with (h)\n$h.__code__.co_consts", helper)


@pytest.mark.parametrize("attr", [
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_await", "ag_frame", "ag_code",
    "f_back", "f_locals", "f_globals", "f_builtins", "tb_frame", "tb_next", "co_code",
    "func_globals", "im_func", "mro", "__globals__", "__class__", "__dict__", "__subclasses__",
    "__self__", "__func__", "__closure__", "_private",
])
def test_every_internal_attribute_is_refused_at_compile_time(attr: str) -> None:
    with pytest.raises(SecurityError, match=f"attribute '{attr}' is denied"):
        template.Template(f"$def with (x)\n$x.{attr}")


def test_literal_attributes_cost_nothing_at_render_time() -> None:
    # The compiled code reads a literal attribute directly: no run-time check.
    code = template._compiled("$def with (row)\n$row.name $row.id", "<fast>")
    names = {name for const in code.co_consts if isinstance(const, types.CodeType)
             for name in const.co_names}
    assert "name" in names and not {"__key__", "__format__", "__format_attr__"} & names


# -- string subscripts ----------------------------------------------------------

def test_dunder_keys_refused_literal_and_computed() -> None:
    with pytest.raises(SecurityError, match="'__globals__'"):
        template.Template("$def with (d)\n$d['__globals__']")
    with pytest.raises(SecurityError, match="'__builtins__'"):
        template.Template("$code:\n    x = {}\n    x['__builtins__'] = 1")
    # A key built at run time gets the same rule when read.
    error = attempt("$def with (d)\n$ k = '__glo' + 'bals__'\n$d[k]", {"__globals__": "leak"})
    assert "'__globals__'" in str(error)
    attempt("$def with (d, k)\n$d[k]", {"__builtins__": 1}, "__builtins__")


def test_computed_keys_of_every_shape_are_checked() -> None:
    class Key(str):
        pass

    data = {"__globals__": "leak"}
    for text in ("$def with (d, k)\n$d[k]", "$def with (d, k)\n$d[k + '']",
                 "$def with (d, k)\n$d[(k)]", "$def with (d, k)\n${[d[x] for x in [k]]}",
                 "$def with (d, k)\n$code:\n    v = d[k]\n$v",
                 "$def with (d, k)\n${(lambda m, n: m[n])(d, k)}"):
        for key in ("__globals__", Key("__globals__")):
            error = attempt(text, data, key)
            assert "'__globals__'" in str(error)


def test_ordinary_subscripts_still_work() -> None:
    text = ("$def with (d, xs, k, i, t)\n$d[k] $d['_id'] $xs[i] $xs[-1] $xs[1:] $xs[i:] "
            "$d.get(k) ${ {'a': 1}[k[0]] } $d[t] ${ {1.5: 'f'}[xs[0] + 0.5] } $d[k.lower()]")
    got = template.Template(text)({"a": "<A>", "_id": 7, (1, 2): "tuple"}, [1, 2, 3], "a", 0,
                                  (1, 2))
    assert str(got) == "<A> 7 1 3 [2, 3] [1, 2, 3] <A> 1 tuple f <A>\n"


@pytest.mark.parametrize("key", ["", "a", "ID", "_id", "_", "`x", "^", "~", "\xe9", "_\x00", 7, 2.5,
                                 None, (1, "__x")])
def test_computed_keys_refused_exactly_when_they_start_with_two_underscores(key: Any) -> None:
    # The inlined check (plain name keys) and the helper (any other key
    # expression) agree: refused exactly when the key is a str starting "__".
    data = {key: "v"}
    for text in ("$def with (d, k)\n$d[k]", "$def with (d, k)\n$d[(k, 0)[0]]"):
        assert str(template.Template(text)(data, key)) == "v\n"
    if isinstance(key, str):
        for text in ("$def with (d, k)\n$d[k]", "$def with (d, k)\n$d[(k, 0)[0]]"):
            attempt(text, {"_" + "_" + key: "v"}, "__" + key)


# -- builtins -----------------------------------------------------------------------

DANGEROUS_BUILTINS = ["open", "eval", "exec", "compile", "getattr", "setattr", "delattr", "vars",
                      "globals", "locals", "type", "breakpoint", "input", "help", "memoryview",
                      "object", "super", "classmethod", "staticmethod", "property", "print",
                      "exit", "quit", "__build_class__", "__loader__", "__spec__"]


@pytest.mark.parametrize("name", DANGEROUS_BUILTINS)
def test_no_dangerous_builtins(name: str) -> None:
    assert name not in runtime.TEMPLATE_BUILTINS
    with pytest.raises((NameError, SecurityError)):
        template.Template(f"${name}")()


def test_template_import_gives_nothing_back(marker: Path) -> None:
    attempt("$__import__('os')")
    importer = runtime.TEMPLATE_BUILTINS["__import__"]
    assert importer is not __import__
    for name in ("os", "subprocess", "sys", "webmini", "builtins"):
        with pytest.raises(SecurityError):
            importer(name)
    assert importer("time") is None  # C code reads sys.modules, never the return value
    # What C code imports while a template runs still works: datetime's
    # strftime, strptime, timetuple and date.today import through it.
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    text = ("$def with (d, dt)\n$d.strftime('%Y-%m-%d %H:%M') "
            "$dt.strptime('2024', '%Y').year $d.timetuple().tm_yday ${dt.today().year > 2000}")
    assert str(template.Template(text)(when, datetime.datetime)) == \
        "2024-05-06 07:08 2024 127 True\n"
    kept = ["len", "range", "int", "enumerate", "dict", "list", "min", "max", "abs", "True"]
    assert all(name in runtime.TEMPLATE_BUILTINS for name in kept)


def test_check_helpers_cannot_be_shadowed() -> None:
    for text in ("$def f(__key__=1):\n    x\n", "$code:\n    def __format__(s):\n        pass",
                 "$code:\n    f = lambda __key__: __key__", "$ __key__ = len"):
        with pytest.raises(SecurityError):
            template.Template(text)


# -- format strings -------------------------------------------------------------------

def test_format_string_variable_reaches_no_environment(secret: str) -> None:
    text = ("$def with (h)\n$ f = '{0.__globals__[os].environ[WEBMINI_TEMPLATE_SECRET]}'\n"
            "${f.format(h)}")
    error = attempt(text, helper)
    assert "__globals__" in str(error) and secret not in str(error)
    # The attack as reported, through sys.modules.
    attempt("$def with (h)\n$ f = '{0.__globals__[sys].modules[os].environ[HOME]}'\n"
            "${f.format(h)}", helper)


@pytest.mark.parametrize("text", [
    "${('{0.%s}' % '__class__').format(h)}",
    "${('{x.%s}' % '__globals__').format_map({'x': h})}",
    "${('{x.%s}' % '__globals__').format(x=h)}",
    "$ f = ('{0.%s}' % '__globals__').format\n${f(h)}",
    "$ f = ('{%s}' % '__class__').format_map\n${f({})}",
    "${('{0:{1.%s}}' % '__class__').format(1, h)}",  # a field nested in the format spec
    "${('{0[%s]}' % '__globals__').format({'__globals__': 1})}",  # an index key
    "${('{0.%s} {' % '__class__').format(h)}",  # unsafe, then malformed
    "${('{0.%s}' % 'gi_frame').format((x for x in [1]))}",
    "${['{0.__class__}'][0].format(h)}",
])
def test_computed_format_strings_are_checked_at_run_time(text: str) -> None:
    attempt("$def with (h)\n" + text, helper)


def test_format_through_any_receiver() -> None:
    fmt = "{0.__globals__}"
    # str itself, a str subclass, a string.Formatter: whatever the receiver.
    attempt("$def with (h, s, f)\n${s.format(f, h)}", helper, str, fmt)
    attempt("$def with (h, s, f)\n${s.format_map(f, {'x': h})}", helper, str, "{x.__class__}")
    attempt("$def with (h, s, f)\n${s.format(f, h)}", helper, string.Formatter(), fmt)

    class Markup(str):
        def format(self, *args: Any, **kwargs: Any) -> str:
            return "escaped:" + str.format(self, *args, **kwargs)

    attempt("$def with (h, m)\n${m.format(h)}", helper, Markup(fmt))
    # A str subclass keeps its own format method when the string is safe.
    assert str(template.Template("$def with (m)\n${m.format(1)}")(Markup("{0}"))) == "escaped:1\n"


def test_literal_format_strings_are_refused_at_compile_time() -> None:
    for text in ("${'{0.__class__}'.format(1)}", "${'{0.gi_frame}'.format(1)}",
                 "${'{0[__globals__]}'.format(1)}", "$ f = '{0.mro}'.format",
                 "${'{x:{y.f_back}}'.format_map(d)}"):
        with pytest.raises(SecurityError):
            template.Template(text)


def test_safe_formatting_is_unchanged() -> None:
    class Row:
        format = "csv"  # a data attribute named format is still an attribute
        real = 3

    text = ("$def with (r, f, n)\n${f.format(n, r)} ${'{0:,} {0.real}'.format(n)} "
            "${f.format_map({'x': 1}) if 0 else ''}$r.format ${'{a[k]}'.format_map({'a': {'k': 2}})} "
            "${(f + '!').format(1, r)}")
    assert str(template.Template(text)(Row(), "{0:,}/{1.real}", 12345)) == \
        "12,345/3 12,345 12345 csv 2 1/3!\n"
    # Long or many format strings are checked too, and are not all remembered.
    from webmini.webpy.templetor.sandbox import SAFE_FORMATS

    long_text = "$def with (f, n)\n${f.format(n).strip()}"
    assert str(template.Template(long_text)("{0}" + " " * 5000, 7)) == "7\n"
    attempt(long_text, "{0.__class__}" + " " * 5000, 7)
    for i in range(3000):
        template.Template("$def with (f)\n${f.format(1)}")("{0}" + str(i))
    assert len(SAFE_FORMATS) <= 1024
    # Malformed strings fail as str.format fails, with its exception types.
    with pytest.raises(IndexError):
        template.Template("$def with (f)\n${f.format()}")("{0} {")
    with pytest.raises(ValueError):
        template.Template("$def with (f)\n${f.format(1)}")("{0} {")
    with pytest.raises(ValueError, match="positional"):
        template.Template("$def with (f)\n${f.format_map({})}")("{}")


def test_sandboxed_formatter() -> None:
    from webmini.webpy.templetor.sandbox import SandboxedFormatter

    formatter = SandboxedFormatter()
    assert formatter.format("{0.real:>4}|{x[k]}", 5, x={"k": "v"}) == "   5|v"
    with pytest.raises(SecurityError):
        formatter.format("{0.__class__}", 1)
    with pytest.raises(SecurityError):
        formatter.format("{0[__globals__]}", {"__globals__": 1})
    with pytest.raises(SecurityError):
        formatter.format("{0.f_globals}", 1)


# -- through render() and a request ---------------------------------------------------------

def test_a_template_file_served_by_a_handler_leaks_nothing(tmp_path: Path, secret: str,
                                                           marker: Path) -> None:
    import webmini as web
    from webmini.testing import TestClient

    (tmp_path / "evil.html").write_text(
        "$def with (h)\n$ f = '{0.__globals__[os].environ[WEBMINI_TEMPLATE_SECRET]}'\n"
        "<p>${f.format(h)}</p>\n")
    (tmp_path / "shell.html").write_text(
        "$def with (h)\n$ k = '__glo' + 'bals__'\n"
        f"${{ {{'__globals__': 1}}[k] }} $(__import__('os').system('touch {marker}'))\n")
    render = template.render(str(tmp_path))

    class Evil:
        def GET(self) -> Any:
            return render.evil(helper)

    client = TestClient(web.application(("/", Evil), {}).wsgifunc())
    resp = client.request("GET", "/")
    assert resp.status_code == 500
    assert secret.encode() not in resp.body
    with pytest.raises(SecurityError):
        render.evil(helper)
    with pytest.raises(SecurityError, match="__import__"):
        render.shell(helper)
    assert not marker.exists()


# -- what a template can reach -----------------------------------------------------------

REACH_TEMPLATE = """$def with (s)
$def f(): 1
$var gen = (x for x in [1])
$for i in [1]:
    $var loopgen = loop.setup([1])
    $var loop_ = loop
    $for j in [1]:
        $var context = loop.parent
$var function = f
$var bound_format = s.format
$var bound_format_map = s.format_map
$var result = self
$var lam = lambda: 1
$var names = [ForLoop, TemplateResult, new_result_, escape_, text_, join_, finish_, dict, iter, \
enumerate, filter, reversed, range, slice, set, list, tuple, int, float, bool, abs, len, min, max, \
id, isinstance, callable, chr, ord, hex, oct, pow, divmod, round, any, all]
"""


def test_nothing_reachable_leads_to_a_module_frame_or_namespace() -> None:
    """Walk every attribute and item the rules allow from what a template holds: no way out."""
    import builtins
    import sys

    from webmini.webpy.templetor.sandbox import unsafe_attribute, unsafe_key

    held = template.Template(REACH_TEMPLATE, filename="reach.html")("{0}")
    dangerous = {id(vars(runtime)): "the runtime module's globals"}
    for name in DANGEROUS_BUILTINS + ["__import__"]:
        if hasattr(builtins, name):
            dangerous[id(getattr(builtins, name))] = f"builtins.{name}"
    for module in list(sys.modules.values()):
        dangerous.setdefault(id(getattr(module, "__dict__", None)), f"globals of {module!r}")
    internals = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType)
    seen: set[int] = set()
    reached: list[str] = []
    frontier = [(value, name) for name, value in held.items() if name != "__body__"]
    for _ in range(5):
        following: list[tuple[Any, str]] = []
        for obj, path in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, internals) or id(obj) in dangerous:
                reached.append(f"{path}: {dangerous.get(id(obj), type(obj).__name__)}")
                continue
            for name in dir(obj):
                if not unsafe_attribute(name) and name not in ("format", "format_map"):
                    try:
                        following.append((getattr(obj, name), f"{path}.{name}"))
                    except Exception:  # noqa: S112 (a property may refuse: nothing reached)
                        continue
            if isinstance(obj, dict):
                following += [(v, f"{path}[{k!r}]") for k, v in obj.items() if not unsafe_key(k)]
            elif isinstance(obj, (list, tuple)):
                following += [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        frontier = following
    assert len(seen) > 100  # the walk did go somewhere
    assert reached == []
