"""Templetor's grammar: template text to a tree of nodes that remember their line.

The grammar is web.py 0.76's, quirks included, because a template must give
the same bytes on both: a ``$`` line is a statement when the first Python
token after the ``$`` is a statement keyword; an expression extends over
names, ``.attr`` and balanced brackets; a block's body is its indented lines,
and each output line inside a block is prefixed with the indentation of the
``$`` statement that opened it. Unlike web.py, every node carries its
template line number, so compiled code reports errors at the template line.
"""

from __future__ import annotations

import re
import tokenize
from dataclasses import dataclass, field
from token import NAME

__all__ = [
    "Assign", "Block", "Code", "Expr", "Line", "ParseError", "Stmt", "Text", "TemplateTree",
    "Var", "normalize_text", "parse",
]

INDENT = "    "
BLOCK_KEYWORDS = frozenset(("for", "while", "if", "elif", "else", "def", "code"))
SIMPLE_KEYWORDS = frozenset(("pass", "break", "continue", "return"))
_PARENS = {"(": ")", "[": "]", "{": "}"}
_LEADING_SPACES = re.compile("  +")


class ParseError(SyntaxError):
    """The template text does not follow Templetor's grammar."""


@dataclass(slots=True)
class Text:
    """Literal output text."""

    value: str


@dataclass(slots=True)
class Expr:
    """``$expr`` (escaped) or ``$:expr`` (raw)."""

    code: str
    escape: bool
    lineno: int


@dataclass(slots=True)
class Line:
    """One template line of output: text and expressions."""

    parts: list[Text | Expr]
    lineno: int


@dataclass(slots=True)
class Assign:
    """``$ x = ...``: a Python statement on one line."""

    code: str
    lineno: int


@dataclass(slots=True)
class Stmt:
    """``$pass``, ``$break``, ``$continue``, ``$return ...``."""

    code: str
    lineno: int


@dataclass(slots=True)
class Var:
    """``$var name = expr`` (``parts`` None) or ``$var name: text`` (``parts``)."""

    name: str
    code: str
    parts: list[Text | Expr] | None
    lineno: int


@dataclass(slots=True)
class Code:
    """``$code:`` block: Python lines, the first at ``lineno``."""

    lines: list[str]
    lineno: int


@dataclass(slots=True)
class Block:
    """``$for``/``$while``/``$if``/``$elif``/``$else``/``$def``: a header and a body."""

    keyword: str
    stmt: str
    body: list[Node]
    begin_indent: str
    lineno: int


Node = Line | Assign | Stmt | Var | Code | Block


@dataclass(slots=True)
class TemplateTree:
    """A parsed template: its ``$def with`` parameters (or ``None``) and body."""

    params: str | None
    body: list[Node] = field(default_factory=list)


def normalize_text(text: str) -> str:
    """Unify newlines, expand tabs, end with a newline, drop a BOM, turn ``\\$`` into ``$$``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs()
    if not text.endswith("\n"):
        text += "\n"
    # web.py strips the UTF-8 BOM bytes read as Latin-1; a decoded BOM
    # (U+FEFF) is dropped too, so a BOM'd file still starts with ``$def with``.
    for bom in ("\xef\xbb\xbf", "\ufeff"):
        if text.startswith(bom):
            text = text[len(bom):]
    return text.replace(r"\$", "$$")


def _splitline(text: str) -> tuple[str, str]:
    index = text.find("\n") + 1
    if index:
        return text[:index], text[index:]
    return text, ""


def _first_token(text: str) -> str:
    """The first Python token of ``text`` read as one line (ParseError if it does not tokenize).

    As in web.py, the whole rest of the template is handed to the tokenizer
    as a single line: after a ``$`` followed only by spaces, the "blank line"
    token then holds the following lines, and the ``$`` is not an assignment.
    """
    try:
        return next(tokenize.generate_tokens(iter([text]).__next__)).string
    except (tokenize.TokenError, SyntaxError, StopIteration) as exc:
        raise ParseError(f"cannot tokenize: {exc}") from None


def _line_tokens(line: str) -> list[str]:
    try:
        return [t.string for t in tokenize.generate_tokens(iter([line]).__next__)]
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ParseError(f"invalid statement: {exc}") from None


class _Tok:
    __slots__ = ("type", "string", "start", "end")

    def __init__(self, type_: int, string: str, start: int, end: int) -> None:
        self.type = type_
        self.string = string
        self.start = start
        self.end = end


def _expr_tokens(text: str) -> list[_Tok]:
    """Tokens of one line, with a pseudo-token (type -1) for each gap of spaces."""
    out: list[_Tok] = []
    previous_end = None
    try:
        for t in tokenize.generate_tokens(iter([text]).__next__):
            (srow, scol), (erow, ecol) = t.start, t.end
            if previous_end is not None and previous_end != t.start:
                out.append(_Tok(-1, text[previous_end[1]:scol], previous_end[1], scol))
            previous_end = t.end
            out.append(_Tok(t.type, t.string, scol if srow == 1 else len(text),
                            ecol if erow == 1 else len(text)))
    except (tokenize.TokenError, SyntaxError):
        pass  # an unbalanced bracket: the walk below runs out of tokens and reports it
    return out


def _expr_end(text: str) -> int:
    """Length of the ``$`` expression at the start of ``text`` (web.py's token walk)."""
    tokens = _expr_tokens(text)
    pos = 0
    last: _Tok | None = None

    def take() -> _Tok:
        nonlocal pos, last
        if pos >= len(tokens):
            raise ParseError("unbalanced brackets in expression")
        last = tokens[pos]
        pos += 1
        return last

    def peek(ahead: int = 0) -> _Tok | None:
        return tokens[pos + ahead] if pos + ahead < len(tokens) else None

    def brackets() -> None:
        closing = _PARENS[take().string]
        while True:
            ahead = peek()
            if ahead is not None and ahead.string in _PARENS:
                brackets()
            elif take().string == closing:
                return

    def extended() -> None:
        while True:
            ahead = peek()
            if ahead is None:
                return
            if ahead.string == ".":
                after = peek(1)
                if after is None or after.type != NAME:
                    return
                take()
                take()
            elif ahead.string in _PARENS:
                brackets()
            else:
                return

    first = peek()
    if first is None:
        raise ParseError("empty expression")
    if first.string in _PARENS:
        brackets()
    else:
        take()
        extended()
    assert last is not None
    return last.end


class _Parser:
    """One parse of one template; line numbers count from the text it was given."""

    def parse(self, text: str) -> TemplateTree:
        if text.startswith("$def with"):
            line, text = _splitline(text)
            params = line[len("$def with"):].strip()
            return TemplateTree(params, self.suite(text, 2))
        return TemplateTree(None, self.suite(text, 1))

    def suite(self, text: str, lineno: int) -> list[Node]:
        nodes = []
        while text:
            node, rest = self.section(text, lineno)
            nodes.append(node)
            lineno += text.count("\n", 0, len(text) - len(rest))
            text = rest
        return nodes

    def section(self, text: str, lineno: int) -> tuple[Node, str]:
        if text.lstrip(" ").startswith("$"):
            index = text.index("$")
            begin_indent, after = text[:index], text[index + 1:]
            try:
                ahead = _first_token(after)
                if ahead == "var":
                    return self.var(after, lineno)
                if ahead in BLOCK_KEYWORDS:
                    return self.block(after, begin_indent, lineno)
                if ahead in SIMPLE_KEYWORDS:
                    line, rest = _splitline(after)
                    return Stmt(line.strip(), lineno), rest
                if ahead.strip() == "":
                    line, rest = _splitline(after)
                    return Assign(line.strip(), lineno), rest
            except ParseError as exc:
                exc.lineno = exc.lineno or lineno
                raise
        return self.line(text, lineno)

    def line(self, text: str, lineno: int) -> tuple[Line, str]:
        line, rest = _splitline(text)
        if line.endswith("\\\n"):
            line = line[:-2]  # a trailing backslash joins the next line: no newline
        return Line(self.parts(line, lineno), lineno), rest

    def parts(self, line: str, lineno: int) -> list[Text | Expr]:
        parts: list[Text | Expr] = []
        while line:
            if line.startswith("$$"):
                parts.append(Text("$"))
                line = line[2:]
            elif line.startswith("$#"):
                parts.append(Text("\n"))  # a comment runs to the end of the line
                line = ""
            elif line.startswith("$"):
                escape = not line.startswith("$:")
                line = line[1:] if escape else line[2:]
                try:
                    end = _expr_end(line)
                except ParseError as exc:
                    exc.lineno = lineno
                    raise
                raw = line[:end]
                code = raw.strip()
                if raw.startswith("{") and raw.endswith("}"):
                    code = "(" + code[1:-1] + ")"
                if not code:
                    raise ParseError("expression expected after $", (None, lineno, None, None))
                parts.append(Expr(code, escape, lineno))
                line = line[end:]
            else:
                index = line.find("$")
                if index < 0:
                    parts.append(Text(line))
                    line = ""
                else:
                    parts.append(Text(line[:index]))
                    line = line[index:]
        return parts

    def var(self, text: str, lineno: int) -> tuple[Var, str]:
        line, text = _splitline(text)
        tokens = _line_tokens(line)
        if len(tokens) < 4:
            raise ParseError("invalid $var statement", (None, lineno, None, None))
        name, sep = tokens[1], tokens[2]
        value = line.split(sep, 1)[1].strip()
        if sep == "=":
            return Var(name, value, None, lineno), text
        if sep != ":":
            raise ParseError("invalid $var statement", (None, lineno, None, None))
        if tokens[3] == "\n":  # the value is the indented block below
            block, text = self.indented(text, INDENT)
            parts: list[Text | Expr] = []
            for offset, block_line in enumerate(block.splitlines()):
                parts.extend(self.line(block_line, lineno + 1 + offset)[0].parts)
                parts.append(Text("\n"))
        else:
            parts = self.line(value, lineno)[0].parts
        return Var(name, "", parts, lineno), text

    @staticmethod
    def indented(text: str, indent: str) -> tuple[str, str]:
        """The lines of ``text`` indented by ``indent`` (blank lines included), dedented."""
        if indent == "":
            return "", text
        block = []
        while text:
            line, rest = _splitline(text)
            if line.strip() == "":
                block.append("\n")
            elif line.startswith(indent):
                block.append(line[len(indent):])
            else:
                break
            text = rest
        return "".join(block), text

    @staticmethod
    def statement_end(line: str, delim: str = ":") -> int:
        """Index just past ``delim`` outside brackets (or where tokenizing stopped)."""
        index = 0
        try:
            tokens = tokenize.generate_tokens(iter([line]).__next__)

            def until(end: str) -> None:
                nonlocal index
                for t in tokens:
                    index = t.end[1]
                    if t.string == end:
                        return
                    if t.string in _PARENS:
                        until(_PARENS[t.string])
                    if t.string == "\n":
                        return

            until(delim)
        except (tokenize.TokenError, SyntaxError):
            pass  # the Python compiler reports the broken statement later
        return index

    def block(self, text: str, begin_indent: str, lineno: int) -> tuple[Node, str]:
        line, text = _splitline(text)
        end = self.statement_end(line)
        stmt, rest = line[:end], line[end:]
        keyword = _first_token(stmt)
        if rest.strip() and not rest.lstrip().startswith("$#"):
            block, first = rest.lstrip(), lineno  # the body is on the statement's line
        else:
            match = _LEADING_SPACES.match(text)
            first_indent = (match.group(0) if match else "")[len(begin_indent):]
            if keyword == "code":
                indent = begin_indent + first_indent
            else:
                indent = begin_indent + min(first_indent, INDENT)
            block, text = self.indented(text, indent)
            first = lineno + 1
        if keyword == "code":
            lines = block.split("\n")
            if lines[-1] == "":
                lines.pop()
            return Code(lines, first), text
        if keyword not in BLOCK_KEYWORDS:
            raise ParseError(f"unknown statement: {keyword!r}", (None, lineno, None, None))
        return Block(keyword, stmt, self.suite(block, first), begin_indent, lineno), text


def parse(text: str) -> TemplateTree:
    """Parse normalized template ``text`` (see :func:`normalize_text`)."""
    return _Parser().parse(text)
