"""Templetor's compiler: a parsed template to one Python code object, checked for safety.

The generated function appends to a local list and joins it once at the end
(web.py builds a list per line and extends a mapping object). Runs of output
lines become a single ``extend_((...))`` of constants and escaped values, and
``$for`` loops only go through the ``loop`` helper when the template mentions
``loop``. Every AST node is renumbered to its template line and compiled
under the template's file name, so a traceback, ``linecache`` and the debug
page point at the template line.
"""

from __future__ import annotations

import ast
import linecache
import os
import re
import string
from collections.abc import Iterator
from types import CodeType

from webmini.webpy.templetor.parser import (
    Assign,
    Block,
    Code,
    Expr,
    Line,
    Node,
    Stmt,
    TemplateTree,
    Text,
    Var,
    _Parser,
    normalize_text,
    parse,
)

__all__ = ["SecurityError", "compile_template", "generate_source"]

_PY_INDENT = "    "
_LOOP_NAME = re.compile(r"\bloop\b")
# The preamble of every template function and ``$def``: output goes to a list.
_PREAMBLE = "self = new_result_(); out_ = []; extend_ = out_.extend; append_ = out_.append"
_EPILOGUE = "return finish_(self, out_)"


class SecurityError(Exception):
    """The template tried something a template may not do (import, exec, ``_`` attributes...)."""


class _Source:
    """Generated Python lines, each with the template line it came from."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.linemap: list[int] = []

    def add(self, level: int, text: str, lineno: int) -> None:
        self.lines.append(_PY_INDENT * level + text)
        self.linemap.append(lineno)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _user_code(nodes: list[Node]) -> Iterator[str]:
    for node in nodes:
        if isinstance(node, Line):
            yield from (p.code for p in node.parts if isinstance(p, Expr))
        elif isinstance(node, (Assign, Stmt)):
            yield node.code
        elif isinstance(node, Var):
            yield node.code
            yield from (p.code for p in node.parts or () if isinstance(p, Expr))
        elif isinstance(node, Code):
            yield from node.lines
        elif isinstance(node, Block):
            yield node.stmt
            yield from _user_code(node.body)


def _value(part: Expr) -> str:
    return f"{'escape_' if part.escape else 'text_'}({part.code})"


class _Generator:
    def __init__(self, use_loop: bool) -> None:
        self.use_loop = use_loop
        self.out = _Source()

    def function(self, header: str, body: list[Node], level: int, lineno: int,
                 text_indent: str) -> None:
        self.out.add(level, header, lineno)
        self.out.add(level + 1, _PREAMBLE, lineno)
        if self.use_loop and level == 0:
            self.out.add(level + 1, "loop = ForLoop()", lineno)
        self.suite(body, level + 1, text_indent)
        if level == 0:
            # web.py's template function ends with a blank line before its
            # return: a trailing backslash on the last Python line joins it.
            self.out.add(0, "", self.out.linemap[-1])
        self.out.add(level + 1, _EPILOGUE, self.out.linemap[-1])

    def suite(self, nodes: list[Node], level: int, text_indent: str) -> None:
        run: list[tuple[str | Expr, int]] = []
        for node in nodes:
            if isinstance(node, Line):
                if text_indent:
                    run.append((text_indent, node.lineno))
                run.extend((p.value if isinstance(p, Text) else p, node.lineno)
                           for p in node.parts)
                if not node.parts and not text_indent:
                    run.append(("", node.lineno))
                continue
            if run:
                self.output(run, level)
                run = []
            if isinstance(node, (Assign, Stmt)):
                if node.code:
                    self.out.add(level, node.code, node.lineno)
            elif isinstance(node, Var):
                self.var(node, level)
            elif isinstance(node, Code):
                for offset, line in enumerate(node.lines):
                    self.out.add(level, line, node.lineno + offset)
            else:
                self.block(node, level, text_indent)
        if run:
            self.output(run, level)

    def output(self, run: list[tuple[str | Expr, int]], level: int) -> None:
        # Adjacent constants fold into one; each template line keeps its own
        # generated line, so an error in an expression reports its line.
        items: list[tuple[str | Expr, int]] = []
        for item, lineno in run:
            if isinstance(item, str) and items and isinstance(items[-1][0], str):
                previous = items[-1][0]
                assert isinstance(previous, str)
                items[-1] = (previous + item, items[-1][1])
            else:
                items.append((item, lineno))
        items = [(item, lineno) for item, lineno in items if item != ""] or items[:1]
        if len(items) == 1:
            item, lineno = items[0]
            value = repr(item) if isinstance(item, str) else _value(item)
            self.out.add(level, f"append_({value})", lineno)
            return
        self.out.add(level, "extend_((", items[0][1])
        line: list[str] = []
        current = items[0][1]
        for item, lineno in items:
            if lineno != current and line:
                self.out.add(level + 1, " ".join(line), current)
                line = []
            current = lineno
            line.append((repr(item) if isinstance(item, str) else _value(item)) + ",")
        self.out.add(level + 1, " ".join(line), current)
        self.out.add(level, "))", current)

    def var(self, node: Var, level: int) -> None:
        target = f"self[{node.name!r}] = "
        if node.parts is None:
            self.out.add(level, target + node.code, node.lineno)
            return
        self.out.add(level, target + "join_(", node.lineno)
        for part in node.parts:
            value = repr(part.value) if isinstance(part, Text) else _value(part)
            self.out.add(level + 1, value + ",", part.lineno if isinstance(part, Expr)
                         else self.out.linemap[-1])
        self.out.add(level, ")", self.out.linemap[-1])

    def block(self, node: Block, level: int, text_indent: str) -> None:
        text_indent = node.begin_indent + text_indent
        stmt = node.stmt
        if node.keyword == "def":
            self.function(stmt, node.body, level, node.lineno, text_indent)
            return
        if node.keyword == "for":
            # web.py rewrites every ``for`` header, dropping its last character
            # (so ``$for x in y`` without a colon is accepted): done the same.
            split = _Parser.statement_end(stmt, "in")
            head, seq = stmt[:split], stmt[split:-1].strip()
            stmt = f"{head} loop.setup({seq}):" if self.use_loop else f"{head} {seq}:"
        self.out.add(level, stmt, node.lineno)
        self.suite(node.body, level + 1, text_indent)


def generate_source(tree: TemplateTree) -> tuple[str, list[int]]:
    """Python source of the template function ``__template__`` and its line map."""
    use_loop = any(_LOOP_NAME.search(code) for code in _user_code(tree.body)) or bool(
        tree.params and _LOOP_NAME.search(tree.params))
    gen = _Generator(use_loop)
    header = f"def __template__{tree.params}:" if tree.params is not None else \
        "def __template__():"
    gen.function(header, tree.body, 0, 1, "")
    return gen.out.text(), gen.out.linemap


# web.py's list of AST node types a template may contain (minus Python 2's).
_ALLOWED_NODES = frozenset((
    "Add", "And", "Assign", "Attribute", "AugAssign", "BinOp", "BitAnd", "BitOr", "BitXor",
    "BoolOp", "Break", "Call", "ClassDef", "Compare", "Constant", "Continue", "Del", "Delete",
    "Dict", "DictComp", "Div", "Eq", "ExceptHandler", "Expr", "Expression", "FloorDiv", "For",
    "FunctionDef", "GeneratorExp", "Gt", "GtE", "If", "IfExp", "In", "Interactive", "Invert",
    "Is", "IsNot", "JoinedStr", "LShift", "Lambda", "List", "ListComp", "Load", "Lt", "LtE",
    "Mod", "Module", "Mult", "Name", "Not", "NotEq", "NotIn", "Or", "Pass", "Pow", "RShift",
    "Return", "Set", "SetComp", "Slice", "Store", "Sub", "Subscript", "Tuple", "UAdd", "USub",
    "UnaryOp", "While", "With", "Yield", "alias", "arg", "arguments", "comprehension", "keyword",
    "withitem",
))


_CODE_RUNNERS = frozenset(("exec", "eval", "compile", "execfile"))


class _SafetyCheck(ast.NodeVisitor):
    """web.py's safety rules: allowed node types, no ``__`` names, no ``_`` attributes."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.errors: list[str] = []

    def fail(self, node: ast.AST, what: str) -> None:
        self.errors.append(f"{self.filename}:{getattr(node, 'lineno', 0)} - {what}")

    def generic_visit(self, node: ast.AST) -> None:
        name = type(node).__name__
        if name not in _ALLOWED_NODES:
            self.fail(node, f"execution of '{name}' statements is denied")
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        # SECURITY: no __builtins__, __import__, __class__... by name; and no
        # exec/eval/compile even when a global of that name is passed in
        # (web.py only finds them missing at run time).
        if node.id.startswith("__") or node.id in _CODE_RUNNERS:
            self.fail(node, f"access to name '{node.id}' is denied")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # SECURITY: no obj.__class__.__mro__ walks to reach unrestricted code.
        if node.attr.startswith(("_", "func_", "im_")):
            self.fail(node, f"access to attribute '{node.attr}' is denied")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.fail(node, f"access to attribute '{node.attr}' is denied")
        super().generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # SECURITY: "{0.__class__.__mro__}".format(x) walks attributes inside
        # the string, out of sight of the rule above (web.py lets it through);
        # a literal format string gets the same ``_`` rule.
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in ("format", "format_map")
                and isinstance(func.value, ast.Constant) and isinstance(func.value.value, str)):
            for attr in _format_attributes(func.value.value):
                if attr.startswith("_"):
                    self.fail(node, f"access to attribute '{attr}' is denied")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        # SECURITY: web.py 0.76 skips the operands of ``x += ...`` entirely,
        # so ``$ x += __import__('os')...`` passes its check; here they are visited.
        self.generic_visit(node)


def _format_attributes(fmt: str) -> Iterator[str]:
    """Attribute and index names a format string's fields reach (``{0.a[b]}``: a, b)."""
    try:
        fields = [f for _, f, spec, _ in string.Formatter().parse(fmt) if f is not None]
        fields += [f for _, _, spec, _ in string.Formatter().parse(fmt) if spec
                   for _, f, _, _ in string.Formatter().parse(spec) if f is not None]
    except ValueError:
        return  # str.format will refuse it too
    for field in fields:
        yield from (part for part in re.split(r"[.\[\]]", field)[1:] if part)


def _check(tree: ast.AST, filename: str) -> None:
    check = _SafetyCheck(filename)
    check.visit(tree)
    if check.errors:
        raise SecurityError("\n".join(check.errors))


def _template_line(filename: str, text: str, lineno: int) -> str:
    lines = text.splitlines()
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


def _syntax_error(exc: SyntaxError, filename: str, text: str, lineno: int | None) -> SyntaxError:
    lineno = lineno or 0
    line = _template_line(filename, text, lineno)
    kind = type(exc) if isinstance(exc, SyntaxError) else SyntaxError
    return kind(f"{exc.msg} (template {filename}, line {lineno})", (filename, lineno, None, line))


def compile_template(text: str, filename: str = "<template>") -> CodeType:
    """Compile normalized template ``text`` to a code object defining ``__template__``.

    Raises ``SyntaxError`` naming the template file and line, or
    :class:`SecurityError` for code a template may not run.
    """
    try:
        tree = parse(text)
    except SyntaxError as exc:
        raise _syntax_error(exc, filename, text, exc.lineno) from None
    source, linemap = generate_source(tree)
    try:
        module = ast.parse(source, filename)
    except SyntaxError as exc:
        generated = exc.lineno or 1
        lineno = linemap[min(generated, len(linemap)) - 1]
        raise _syntax_error(exc, filename, text, lineno) from None
    for node in ast.walk(module):
        if isinstance(node, (ast.stmt, ast.expr, ast.arg, ast.keyword, ast.excepthandler,
                             ast.alias)):
            start = linemap[node.lineno - 1]
            end = linemap[(node.end_lineno or node.lineno) - 1]
            # Columns index the generated line, not the template's: drop them
            # so tracebacks do not point carets at the wrong characters.
            node.lineno, node.end_lineno = start, max(start, end)
            node.col_offset, node.end_col_offset = 0, 0
    _check(module, filename)
    try:
        code = compile(module, filename, "exec")
    except SyntaxError as exc:
        raise _syntax_error(exc, filename, text, exc.lineno) from None
    if not os.path.isfile(filename):
        # A template from a string: let linecache (tracebacks, the debug
        # page) find its lines under its name. mtime None: never evicted.
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    return code


def compile_text(text: str, filename: str = "<template>") -> CodeType:
    """Normalize raw template ``text`` and compile it (see :func:`compile_template`)."""
    return compile_template(normalize_text(text), filename)
