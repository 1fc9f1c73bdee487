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
import copy
import linecache
import os
import re
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
from webmini.webpy.templetor.sandbox import (
    SecurityError,
    format_refusal,
    unsafe_attribute,
    unsafe_key,
)

__all__ = ["SecurityError", "compile_template", "generate_source"]

_PY_INDENT = "    "
_LOOP_NAME = re.compile(r"\bloop\b")
# The preamble of every template function and ``$def``: output goes to a list.
_PREAMBLE = "self = new_result_(); out_ = []; extend_ = out_.extend; append_ = out_.append"
_EPILOGUE = "return finish_(self, out_)"


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


_FORMAT_METHODS = frozenset(("format", "format_map"))


def _literal_format(node: ast.Attribute) -> bool:
    """``"...".format``: a literal, well-formed format string (checked at compile time)."""
    value = node.value
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
        return False
    try:
        format_refusal(value.value)
    except ValueError:
        return False  # malformed: left to the run-time formatter
    return True


class _SafetyCheck(ast.NodeVisitor):
    """The sandbox's compile-time rules: node types, ``__`` names, unsafe attributes and keys."""

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

    def _definition(self, node: ast.AST, name: str) -> None:
        # SECURITY: a parameter or function named like the run-time checks
        # (``__item__``...) would shadow them; ``__`` names are never defined.
        if name.startswith("__") and name != "__template__":  # the generated function
            self.fail(node, f"access to name '{name}' is denied")

    def visit_arg(self, node: ast.arg) -> None:
        self._definition(node, node.arg)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._definition(node, node.name)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._definition(node, node.name)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # SECURITY: no obj.__class__.__mro__ walks to reach unrestricted code,
        # no frame, code, traceback, generator or coroutine internals
        # ((x for x in y).gi_frame.f_builtins), checked here once so that a
        # literal attribute costs nothing at render time.
        if unsafe_attribute(node.attr):
            self.fail(node, f"access to attribute '{node.attr}' is denied")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.fail(node, f"access to attribute '{node.attr}' is denied")
        # SECURITY: "{0.__class__.__mro__}".format(x) walks attributes inside
        # the string, out of sight of the rule above (web.py lets it through);
        # a literal format string is checked here, any other at run time.
        if node.attr in _FORMAT_METHODS and _literal_format(node):
            assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            refused = format_refusal(node.value.value)
            if refused is not None:
                self.fail(node, f"access to attribute '{refused}' is denied")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        # SECURITY: x['__globals__'], x['__builtins__']: a literal ``__`` key
        # is refused here; a computed key is checked at run time.
        key = node.slice
        if isinstance(key, ast.Constant) and unsafe_key(key.value):
            self.fail(node, f"access to key {key.value!r} is denied")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        # SECURITY: web.py 0.76 skips the operands of ``x += ...`` entirely,
        # so ``$ x += __import__('os')...`` passes its check; here they are visited.
        self.generic_visit(node)


def _static_key(node: ast.expr) -> bool:
    """A subscript key fixed at compile time (a constant, a slice of constants...)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return not isinstance(node.operand.value, str)
    if isinstance(node, ast.Slice):
        return all(part is None or _static_key(part) for part in (node.lower, node.upper,
                                                                    node.step))
    if isinstance(node, ast.Tuple):
        return all(_static_key(element) for element in node.elts)
    return False


def _helper(name: str, args: list[ast.expr], keywords: list[ast.keyword],
            where: ast.AST) -> ast.Call:
    call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=keywords)
    ast.copy_location(call.func, where)
    return ast.copy_location(call, where)


# PERF: where the key or the receiver is a plain name (``row[col]``,
# ``fmt.format(x)``), the check is inlined: a str key not starting with "_"
# (sorted outside ["_", "`"): no slice, no call), an int key, a format string
# already found safe cost a comparison or two. Anything else (a key starting
# with "_" included) goes through the sandbox helper.
_KEY_CHECK = ast.parse(
    "K if K.__class__ is __strtype__ and (K >= '`' or K < '_') or K.__class__ is __inttype__ "
    "else __key__(K)", mode="eval").body
_FORMAT_CHECK = ast.parse(
    "R.A if R.__class__ is __strtype__ and R in __safe_formats__ else __format_attr__(R, 'A')",
    mode="eval").body


def _expand(pattern: ast.expr, name: ast.Name, attr: str, where: ast.AST) -> ast.expr:
    """``pattern`` with ``K``/``R`` replaced by ``name`` and ``A`` by ``attr``, at ``where``."""
    tree = copy.deepcopy(pattern)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in ("K", "R"):
            node.id = name.id
        elif isinstance(node, ast.Attribute) and node.attr == "A":
            node.attr = attr
        elif isinstance(node, ast.Constant) and node.value == "A":
            node.value = attr
        if isinstance(node, (ast.expr, ast.stmt)):
            ast.copy_location(node, where)
    return tree


class _RunTimeChecks(ast.NodeTransformer):
    """Routes what the compiler cannot check through the sandbox's run-time checks.

    ``x[k]`` with a computed key becomes ``x[__key__(k)]``; ``s.format(...)``
    ``__format__(s, ...)`` (``format_map`` likewise) and a bare ``s.format``
    ``__format_attr__(s, "format")``, unless ``s`` is a literal string,
    already checked; plain names get the same checks inlined. Literal
    attributes and keys stay as they are: they cost nothing at render time.
    """

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in _FORMAT_METHODS
                and isinstance(func.ctx, ast.Load) and not _literal_format(func)):
            receiver = self.visit(func.value)
            args = [self.visit(arg) for arg in node.args]
            keywords = [self.visit(keyword) for keyword in node.keywords]
            if isinstance(receiver, ast.Name):
                method = _expand(_FORMAT_CHECK, receiver, func.attr, func)
                return ast.copy_location(ast.Call(method, args, keywords), node)
            return _helper(f"__{func.attr}__", [receiver, *args], keywords, node)
        return self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if (node.attr in _FORMAT_METHODS and isinstance(node.ctx, ast.Load)
                and not _literal_format(node)):
            if isinstance(node.value, ast.Name):
                return _expand(_FORMAT_CHECK, node.value, node.attr, node)
            return _helper("__format_attr__", [node.value, ast.Constant(node.attr)], [], node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        key = node.slice
        if isinstance(node.ctx, ast.Load) and not _static_key(key):
            if isinstance(key, ast.Name):
                node.slice = _expand(_KEY_CHECK, key, "", key)
            else:
                node.slice = _helper("__key__", [key], [], key)
        return node


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
    module = ast.fix_missing_locations(_RunTimeChecks().visit(module))
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
