"""The HTML debug page: traceback, frame locals and the request, all escaped.

Shown only when ``webmini.config.debug`` is on: it exposes source code,
local variables and request headers to whoever made the request.
"""

from __future__ import annotations

import linecache
import reprlib
import traceback
from html import escape
from types import TracebackType
from typing import Any

__all__ = ["render"]

ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]

_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlevel = 3

_STYLE = """
body{font:14px/1.4 sans-serif;margin:0;color:#222}
header{background:#fde;padding:12px 20px;border-bottom:1px solid #caa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:20px 0 6px}
main{padding:0 20px 20px} pre{margin:0;white-space:pre-wrap}
.frame{border:1px solid #ddd;margin:6px 0;padding:6px 10px}
.loc{color:#555} .code{background:#f6f6f6;padding:4px;margin:4px 0}
table{border-collapse:collapse} td{border-bottom:1px solid #eee;padding:2px 8px;
vertical-align:top;font-family:monospace} td:first-child{font-weight:bold}
"""


def _e(value: Any) -> str:
    # SECURITY: every value on the page comes from the program or the client:
    # escape all of it, quotes included.
    return escape(str(value), quote=True)


def _safe_repr(value: Any) -> str:
    try:
        return _repr.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the page
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _frames(tb: TracebackType | None) -> str:
    out = []
    for frame, lineno in traceback.walk_tb(tb):
        code = frame.f_code
        line = linecache.getline(code.co_filename, lineno, frame.f_globals).strip()
        local_rows = [(name, _safe_repr(value)) for name, value in frame.f_locals.items()]
        out.append(
            '<div class="frame">'
            f'<div class="loc">{_e(code.co_filename)}:{lineno} in <b>{_e(code.co_name)}</b></div>'
            f'<pre class="code">{_e(line)}</pre>'
            f"<details><summary>locals</summary>{_table(local_rows)}</details></div>"
        )
    return "".join(out)


_SECRET_HEADERS = frozenset({"HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION", "HTTP_COOKIE",
                             "HTTP_X_API_KEY", "HTTP_X_AUTH_TOKEN"})


def render(exc_info: ExcInfo, environ: dict[str, Any]) -> str:
    """Return the debug page (HTML) for the exception ``exc_info`` raised serving ``environ``."""
    exc_type, exc, tb = exc_info
    name = exc_type.__name__ if exc_type is not None else "Error"
    message = str(exc) if exc is not None else ""
    method = environ.get("REQUEST_METHOD", "")
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING", "")
    # SECURITY: credentials are not shown even on a debug page: it may be
    # opened on a shared screen, pasted into a bug report or reached by others.
    headers = sorted(
        (key[5:].replace("_", "-").title(),
         "[hidden]" if key in _SECRET_HEADERS else str(value))
        for key, value in environ.items() if key.startswith("HTTP_")
    )
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.append((key.replace("_", "-").title(), str(environ[key])))
    env_rows = sorted(
        (key, _safe_repr(value)) for key, value in environ.items()
        if not key.startswith("HTTP_")
    )
    plain = "".join(traceback.format_exception(exc_type, exc, tb)) if exc_type else ""
    page = (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
        f"<title>{_e(name)} at {_e(path)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{_e(name)}: {_e(message)}</h1>"
        f"<div>{_e(method)} {_e(path)}{'?' + _e(query) if query else ''}</div></header><main>"
        f"<h2>Traceback (innermost last)</h2>{_frames(tb)}"
        f"<details><summary>plain text</summary><pre>{_e(plain)}</pre></details>"
        f"<h2>Request headers</h2>{_table(headers)}"
        f"<h2>WSGI environ</h2>{_table(env_rows)}"
        "<p>This page is shown because webmini.config.debug is on; "
        "never enable it in production.</p></main></body></html>"
    )
    # The same values also sit in frame locals (the environ, parsed
    # cookies...): mask them wherever they appear on the page.
    secrets = [str(environ.get(key) or "") for key in _SECRET_HEADERS]
    secrets += [c.partition("=")[2].strip() for c in str(environ.get("HTTP_COOKIE", "")).split(";")]
    for value in sorted(secrets, key=len, reverse=True):
        for form in {value, _e(value), _e(repr(value)[1:-1])}:
            if len(form) >= 4:
                page = page.replace(form, "[hidden]")
    return page
