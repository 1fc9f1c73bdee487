"""Header and status helpers: a leaf of the core that imports nothing of webmini.

Status lines take their reason phrases from :class:`http.HTTPStatus`; header
names and values are checked here before anything sends them.
(``webmini.http`` is web.py's ``web.http`` module, hence this module's name.)
"""

from __future__ import annotations

import datetime
import email.utils
import re
from http import HTTPStatus

# SECURITY: header names are RFC 9110 tokens; values may not contain CR, LF
# or NUL, which would let a caller split the response or inject headers.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Values must also be latin-1 (PEP 3333): uWSGI drops every header of a
# response holding one that is not, and other servers fail with a 500.
_BAD_VALUE = re.compile(r"[\r\n\x00]|[^\x00-\xff]")

Headers = list[tuple[str, str]]


def check_header(name: str, value: str) -> None:
    """Raise ValueError unless ``name: value`` is a safe response header."""
    if not isinstance(name, str) or not TOKEN.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    if not isinstance(value, str) or _BAD_VALUE.search(value):
        raise ValueError(f"invalid value for header {name!r}: CR, LF, NUL and characters "
                         "outside latin-1 are not allowed")


def header_list(headers: dict[str, str] | list[tuple[str, str]] | None) -> Headers:
    """Return ``headers`` (a dict, a list of pairs or None) as a new list of pairs."""
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


def reason(code: int) -> str:
    """Return the reason phrase of ``code`` (``"Not Found"``), or ``"Unknown"``."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


# PERF: status lines are built once per code and reused.
_STATUS_LINES: dict[int, str] = {}


def status_line(code: int) -> str:
    """Return the WSGI status line (``"404 Not Found"``) for a numeric code."""
    line = _STATUS_LINES.get(code)
    if line is None:
        if not 100 <= code <= 999:
            raise ValueError(f"invalid HTTP status code {code!r}")
        line = _STATUS_LINES[code] = f"{code} {reason(code)}"
    return line


_STATUS_TEXT = re.compile(r"[1-9][0-9][0-9] [^\r\n\x00]*")


def as_status(status: str | int) -> str:
    """Return ``status`` (``201``, ``"201"`` or ``"201 Created"``) as a WSGI status line."""
    if isinstance(status, int) and not isinstance(status, bool):
        return status_line(status)
    if isinstance(status, str):
        # SECURITY: a status string ends the status line: no CR, LF or NUL.
        if _STATUS_TEXT.fullmatch(status):
            return status
        if len(status) == 3 and status.isdigit():
            return status_line(int(status))
    raise ValueError(f"invalid HTTP status {status!r}: use an int or '201 Created'")


def http_date(when: datetime.datetime) -> str:
    """Format ``when`` (naive means UTC) as an RFC 9110 HTTP date, whatever the locale."""
    # Not strftime: %a and %b follow the process locale (LC_TIME), and an
    # app or server that calls setlocale() would send "Mi, 02 Dez 2026".
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return email.utils.format_datetime(when.astimezone(datetime.UTC), usegmt=True)
