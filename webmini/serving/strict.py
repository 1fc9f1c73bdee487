"""Strict HTTP/1.1 request-head validation for the dev server (RFC 9112), on ``h11``.

``gevent.pywsgi`` parses request heads with ``http.client``'s lenient
e-mail header parser and ``int()``: it accepts a header line without a
colon, whitespace before a colon, ``Content-Length: +3`` or ``1_0``, two
different lengths, and unknown transfer codings. Each of these is the raw
material of request smuggling when a proxy reads the same bytes another
way. Rather than hand-write an RFC 9112 grammar, the head is first given
to ``h11`` (small, strict, well kept); a few rules ``h11`` leaves open are
added here. pywsgi then parses the already validated bytes as before, so
the WSGI environ is built exactly as it always was.
"""

from __future__ import annotations

import re

try:
    import h11
except ImportError:  # pragma: no cover - installed with webmini[gevent]
    raise ImportError("the webmini dev server needs h11: pip install webmini[gevent]") from None

__all__ = ["BadRequestHead", "check_head"]

_VERSIONS = (b"1.0", b"1.1")
# Control characters other than HTAB (h11 lets DEL and some others through).
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9110 §7.2 Host = uri-host [ ":" port ], uri-host an IP-literal or a reg-name.
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?")


class BadRequestHead(ValueError):
    """A request head RFC 9112 says to answer with 400 and close."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.formatted_message = message  # what pywsgi's error path logs


def check_head(head: bytes) -> None:
    """Raise :class:`BadRequestHead` unless ``head`` (request line + headers + blank line) is valid.

    ``head`` must be complete: it ends with the empty line.
    """
    # SECURITY: ambiguous framing is refused before anything reads a body
    # (RFC 9112 §5, §6.1, §6.3, §7.1).
    lines = head.split(b"\n")
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            # obs-fold, or whitespace before the first field: h11 would unfold
            # it, http.client too but not every proxy alike (§5.2, §2.2).
            raise BadRequestHead("obsolete line folding or leading whitespace in headers")
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        # h11 hints 501 for an unknown transfer coding; refused as 400 here,
        # like every framing error (the connection is closed either way).
        raise BadRequestHead(f"malformed request head: {exc}") from None
    if not isinstance(event, h11.Request):
        raise BadRequestHead("incomplete request head")
    if event.http_version not in _VERSIONS:
        raise BadRequestHead(f"unsupported HTTP version {event.http_version!r}")
    lower = [name for name, _ in event.headers]
    if b"transfer-encoding" in lower:
        if b"content-length" in lower:
            # §6.1: a server MAY reject both; it is the classic smuggling pair.
            raise BadRequestHead("both Transfer-Encoding and Content-Length")
        if event.http_version == b"1.0":
            # §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing.
            raise BadRequestHead("Transfer-Encoding in an HTTP/1.0 request")
    hosts = [value for name, value in event.headers if name == b"host"]
    if len(hosts) > 1:
        raise BadRequestHead("more than one Host header")  # §3.2: MUST be 400
    if hosts and not _HOST.fullmatch(hosts[0]):
        raise BadRequestHead("invalid Host header")  # §3.2: MUST be 400
    for _, value in event.headers:
        if _CTL.search(value):
            raise BadRequestHead("control character in a header value")
