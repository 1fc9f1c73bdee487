"""Response helpers acting on the current request: headers, status, cookies, caching."""

from __future__ import annotations

import datetime
import re
from typing import Any
from urllib.parse import quote

from webmini.ctx import current, current_or_none
from webmini.errors import NotModified
from webmini.headers import TOKEN, as_status, check_header, http_date

_SAMESITE = frozenset({"strict", "lax", "none"})


# PERF: most headers a handler sets are constants; a pair that passed
# check_header once is remembered (bounded), with whether it is Content-Type.
_CHECKED: dict[tuple[str, str], bool] = {}
_CHECKED_MAX = 4096


def header(hdr: str, value: Any, unique: bool = False) -> None:
    """Add a response header; with ``unique=True`` keep an existing one instead."""
    if type(value) is not str:
        value = str(value)
    pair = (hdr, value)
    is_content_type = _CHECKED.get(pair)
    if is_content_type is None:
        check_header(hdr, value)
        is_content_type = hdr.lower() == "content-type"
        if len(_CHECKED) < _CHECKED_MAX:
            _CHECKED[pair] = is_content_type
    c = current_or_none()
    if c is None:
        c = current()  # raises the explanatory RuntimeError
    if unique:
        lower = hdr.lower()
        if any(h.lower() == lower for h, _ in c.headers):
            return
    c.headers.append(pair)
    if is_content_type:
        c.content_typed = True  # PERF: spares has_content_type() a look at the list


def set_status(status: str | int) -> None:
    """Set the response status (``"201 Created"`` or ``201``)."""
    current().status = as_status(status)


# Cookie attribute values: no ";" (a new attribute) and no control character.
_BAD_ATTRIBUTE = re.compile(r"[;\x00-\x1f\x7f]|[^\x00-\xff]")


def _attribute(what: str, value: str) -> str:
    # SECURITY: path="/; Domain=evil.com" would add an attribute of the
    # caller's choosing: ";" and control characters are refused.
    if _BAD_ATTRIBUTE.search(value):
        raise ValueError(f"invalid cookie {what} {value!r}: ';' and control characters "
                         "are not allowed")
    return value


def setcookie(
    name: str,
    value: str,
    expires: int | str | datetime.datetime = "",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    path: str | None = None,
    samesite: str | None = None,
    max_age: int | None = None,
) -> None:
    """Set a cookie (web.py's signature plus ``max_age``); the value is URL-quoted."""
    # SECURITY: the name must be a token and the value is percent-encoded, so
    # neither can end the attribute list or the header early.
    if not TOKEN.fullmatch(name):
        raise ValueError(f"invalid cookie name {name!r}")
    parts = [f"{name}={quote(str(value), safe='')}"]
    if isinstance(expires, datetime.datetime):
        parts.append("Expires=" + http_date(expires))
    elif isinstance(expires, int) and not isinstance(expires, bool):
        if expires < 0:
            parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
            max_age = 0 if max_age is None else max_age
        else:
            when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                seconds=expires
            )
            parts.append("Expires=" + http_date(when))
    elif expires:
        parts.append("Expires=" + _attribute("expires", str(expires)))
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if domain:
        parts.append("Domain=" + _attribute("domain", domain))
    # web.py's default path: the application's home path, so an app mounted
    # under /shop sets its cookies for /shop/ only.
    parts.append("Path=" + _attribute("path", path or current().homepath + "/"))
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite:
        if samesite.lower() not in _SAMESITE:
            raise ValueError("samesite must be 'Strict', 'Lax' or 'None'")
        parts.append("SameSite=" + samesite.capitalize())
    header("Set-Cookie", "; ".join(parts))


def expires(delta: int | float | datetime.timedelta) -> None:
    """Set ``Expires`` to ``delta`` (seconds or timedelta) from now."""
    if not isinstance(delta, datetime.timedelta):
        delta = datetime.timedelta(seconds=delta)
    header("Expires", http_date(datetime.datetime.now(datetime.UTC) + delta))


def lastmodified(date_obj: datetime.datetime) -> None:
    """Set ``Last-Modified`` to ``date_obj``."""
    header("Last-Modified", http_date(date_obj), unique=True)


def _parsehttp_date(text: str) -> datetime.datetime | None:
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def modified(date: datetime.datetime | None = None, etag: str | None = None) -> bool:
    """Conditional GET: raise 304 Not Modified when the client's copy is current.

    Sets ``Last-Modified`` and ``ETag`` for the response; returns True when
    the resource must be sent.
    """
    env = current().env
    n = {t.strip() for t in env.get("HTTP_IF_NONE_MATCH", "").split(",") if t.strip()}
    since_text = env.get("HTTP_IF_MODIFIED_SINCE", "")
    validated = False
    if etag is not None and n:
        validated = "*" in n or f'"{etag}"' in n or etag in n
    elif date is not None and since_text:
        since = _parsehttp_date(since_text)
        d = date if date.tzinfo else date.replace(tzinfo=datetime.UTC)
        validated = since is not None and d.replace(microsecond=0) <= since
    if date is not None:
        lastmodified(date)
    if etag is not None:
        header("ETag", f'"{etag}"', unique=True)
    if validated:
        raise NotModified()
    return True
