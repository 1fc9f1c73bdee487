"""Access lines as text: the default format, escaping, and the batch writer's formatting.

:mod:`webmini.logs` records a request's fields as one flat tuple when it
ends; this module turns waiting records into lines: :func:`default_lines`
for a whole batch in :data:`ACCESS_FORMAT` (column by column), or one
:func:`line_message` at a time for a custom ``web.config.access_log_format``
and for a batch with a field to escape.
"""

from __future__ import annotations

import re
import time
from itertools import chain, repeat
from operator import getitem, mul, sub
from typing import Any

from webmini.config import config

__all__ = ["ACCESS_FORMAT", "Fields", "NeedsCare", "default_lines", "escape", "escape_bare",
           "fields", "line_message", "message", "stamp_of"]

# The default access line (str.format fields: client, method, path, status,
# bytes, duration_ms, request_id, user_agent, referer, protocol).
ACCESS_FORMAT = (
    '{client} "{method} {path} {protocol}" {status} {bytes} {duration_ms:.1f}ms '
    'rid={request_id} ua="{user_agent}"'
)

# SECURITY: control characters, quotes and backslashes of request fields
# are escaped in access lines, so a path or User-Agent cannot forge a line.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\]')
# SECURITY: the unquoted fields (client, protocol) take no space either, so a
# client address a proxy fix-up took from a header cannot add fields.
_UNSAFE_BARE = re.compile(r'[^\x21-\x7e]|["\\]')


_stamp: list[Any] = [-1, ""]  # second -> "YYYY-mm-dd HH:MM:SS" (cached)


def _quoted_ok(text: str) -> bool:
    """True when ``text`` may stand in a quoted field as it is (one C-level scan each)."""
    return text.isprintable() and '"' not in text and "\\" not in text


def _bare_ok(text: str) -> bool:
    """True when ``text`` may stand in an unquoted field as it is."""
    return _quoted_ok(text) and " " not in text and text.isascii()


def escape(text: str) -> str:
    """Return ``text`` with control characters, quotes and backslashes as ``\\xNN``."""
    # PERF: most fields need no escaping; one C-level scan says so.
    if _quoted_ok(text):
        return text
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def escape_bare(text: str) -> str:
    """Return ``text`` for an unquoted field: also spaces and non-ASCII as ``\\xNN``."""
    # PERF: one C-level scan for the usual address or protocol.
    if _bare_ok(text):
        return text
    return _UNSAFE_BARE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class Fields(dict[str, Any]):
    """Access-log fields; an unknown name in a custom format prints as ``-``."""

    def __missing__(self, key: str) -> str:
        return "-"


def fields(item: tuple[Any, ...]) -> Fields:
    """The named, escaped fields of one waiting record (for ``access_log_format``)."""
    start, end, status, sent, rid, method, path, query, client, agent, referer, protocol = item
    path = path or ""
    if query:
        path += "?" + query
    return Fields(
        client=escape_bare(str(client or "-")),  # SECURITY: ProxyFix may set it from a header
        method=escape(method or "-"),
        path=escape(path),
        status=str(status).split(" ", 1)[0],
        bytes=sent,
        duration_ms=(end - start) * 1000,
        request_id=rid,
        user_agent=escape(agent or "-"),
        referer=escape(referer or "-"),
        protocol=escape_bare(str(protocol or "-")),
    )


def message(fields: Fields) -> str:
    """Format ``fields`` with ``web.config.access_log_format`` (a bad format: the default, said)."""
    fmt = config.get("access_log_format") or ACCESS_FORMAT
    try:
        return fmt.format_map(fields)
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        return ACCESS_FORMAT.format_map(fields) + f" (bad access_log_format: {exc!r})"


class NeedsCare(Exception):
    """A batch the column-wise writer leaves to the line-by-line one."""


class _Stamps(dict[int, str]):
    """Millisecond (since the epoch) -> ``YYYY-mm-dd HH:MM:SS,mmm``, as logging's asctime."""

    def __missing__(self, ms: int) -> str:
        second, part = divmod(ms, 1000)
        text = self[ms] = f"{_second_stamp(second)},{part:03d}"
        return text


def _second_stamp(second: int) -> str:
    """``YYYY-mm-dd HH:MM:SS`` of a second since the epoch (local time, cached)."""
    if _stamp[0] != second:
        _stamp[0] = second
        _stamp[1] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
    return _stamp[1]  # type: ignore[no-any-return]


def stamp_of(created: float) -> str:
    """logging's asctime of the wall-clock time ``created``."""
    second = int(created)
    return f"{_second_stamp(second)},{int((created - second) * 1000):03d}"


_QMARK = ("", "?")


def default_lines(batch: list[tuple[Any, ...]], offset: float, head: str) -> str:
    """ACCESS_FORMAT's lines for the whole batch, column by column.

    Raises NeedsCare when a field needs escaping or is not a string.
    """
    # PERF: about 1 us a line written one by one in Python (an f-string, a
    # float format, a time stamp). Here each step is a C-level map() over a
    # whole column (zip(*batch) turns rows into columns) and every line is one
    # str.join of strings: no Python frame per line; time stamps are cached
    # per millisecond. The usual batch (nothing to escape) is checked in one
    # scan of all its text fields.
    (starts, ends, statuses, sents, rids, methods, paths, queries, clients, agents, _referers,
     protocols) = zip(*batch, strict=True)
    try:
        probe = "".join(chain(methods, paths, queries, clients, agents, protocols, statuses))
    except TypeError:
        raise NeedsCare from None  # a None or a number among them
    # SECURITY: escape()'s and escape_bare()'s guards, for the whole batch at once.
    if not _quoted_ok(probe) or not _bare_ok("".join(chain(clients, protocols))):
        raise NeedsCare
    ms = map(int, map(mul, map(offset.__add__, ends), repeat(1000)))
    rows = zip(
        map(_Stamps().__getitem__, ms), repeat(head), clients, repeat(' "'), methods, repeat(" "),
        paths, map(_QMARK.__getitem__, map(bool, queries)), queries, repeat(" "), protocols,
        repeat('" '), map(getitem, statuses, repeat(slice(0, 3))), repeat(" "), map(str, sents),
        repeat(" "), map("%.1f".__mod__, map(mul, map(sub, ends, starts), repeat(1000.0))),
        repeat("ms rid="), rids, repeat(' ua="'), agents, repeat('"\n'),
    )
    try:
        return "".join(map("".join, rows))
    except TypeError:
        raise NeedsCare from None  # a request id or byte count of another type


def line_message(item: tuple[Any, ...]) -> str:
    """One line's message in the configured format (escaped fields)."""
    return message(fields(item))
