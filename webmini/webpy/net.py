"""web.py's ``web.net``: address validation, URL and HTML quoting, HTTP dates."""

from __future__ import annotations

import datetime
import socket
from typing import Any
from urllib.parse import quote

__all__ = [
    "validipaddr", "validip6addr", "validipport", "validip", "validaddr", "urlquote",
    "httpdate", "parsehttpdate", "htmlquote", "htmlunquote", "websafe",
]


def validip6addr(address: str) -> bool:
    """Return True if ``address`` is a valid IPv6 address."""
    try:
        socket.inet_pton(socket.AF_INET6, address)
    except (OSError, ValueError, TypeError):
        return False
    return True


def validipaddr(address: str) -> bool:
    """Return True if ``address`` is a dotted-quad IPv4 address."""
    try:
        octets = address.split(".")
        if len(octets) != 4:
            return False
        return all(o.isdigit() and o.isascii() and 0 <= int(o) <= 255 for o in octets)
    except (AttributeError, ValueError):
        return False


def validipport(port: Any) -> bool:
    """Return True if ``port`` is an integer in 0..65535."""
    try:
        return 0 <= int(port) <= 65535
    except (TypeError, ValueError):
        return False


def validip(ip: str, defaultaddr: str = "0.0.0.0", defaultport: int = 8080) -> tuple[str, int]:
    """Parse ``"addr"``, ``"port"`` or ``"addr:port"`` into ``(addr, port)``; ValueError if bad."""
    addr, port = defaultaddr, defaultport
    text = ip
    if text.startswith("[") and "]" in text:  # [v6]:port
        host, _, rest = text[1:].partition("]")
        if not validip6addr(host):
            raise ValueError(f"{ip} is not a valid IP address/port")
        addr = host
        text = rest[1:] if rest.startswith(":") else ""
        if text:
            if not validipport(text):
                raise ValueError(f"{ip} is not a valid IP address/port")
            port = int(text)
        return addr, port
    if validip6addr(text):
        return text, port
    parts = text.split(":", 1)
    if len(parts) == 1:
        if not text:
            pass
        elif validipaddr(text):
            addr = text
        elif validipport(text):
            port = int(text)
        else:
            raise ValueError(f"{ip} is not a valid IP address/port")
    else:
        if not (validipaddr(parts[0]) and validipport(parts[1])):
            raise ValueError(f"{ip} is not a valid IP address/port")
        addr, port = parts[0], int(parts[1])
    return addr, port


def validaddr(string_: str) -> str | tuple[str, int]:
    """Return a unix socket path (contains ``/``) as is, or ``validip(string_)``."""
    if "/" in string_:
        return string_
    return validip(string_)


def urlquote(val: Any) -> str:
    """Percent-encode ``val`` for a URL path (``/`` kept); None gives ``""``."""
    if val is None:
        return ""
    if isinstance(val, bytes):
        return quote(val)
    return quote(str(val))


def httpdate(date_obj: datetime.datetime) -> str:
    """Format a (UTC) datetime as an HTTP date: ``Thu, 01 Jan 1970 00:00:00 GMT``."""
    return date_obj.strftime("%a, %d %b %Y %H:%M:%S GMT")


def parsehttpdate(string_: str) -> datetime.datetime | None:
    """Parse an HTTP date into a naive UTC datetime; None when it is not one."""
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(string_)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.UTC).replace(tzinfo=None)
    return parsed


# SECURITY: the five characters that can end a text node or an attribute
# value; ``&`` goes first so the entities added after it are not re-escaped.
_QUOTE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&#39;", '"': "&quot;"})


def htmlquote(text: str) -> str:
    """Escape ``& < > ' "`` for HTML text and attribute values."""
    return text.translate(_QUOTE)


def htmlunquote(text: str) -> str:
    """Undo :func:`htmlquote`."""
    text = text.replace("&quot;", '"').replace("&#39;", "'")
    text = text.replace("&gt;", ">").replace("&lt;", "<")
    return text.replace("&amp;", "&")


def websafe(val: Any) -> str:
    """Return ``val`` as HTML-escaped text (None gives ``""``, bytes are UTF-8)."""
    if val is None:
        return ""
    if isinstance(val, bytes):
        val = val.decode("utf-8")
    elif not isinstance(val, str):
        val = str(val)
    return htmlquote(val)
