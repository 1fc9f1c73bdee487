"""Hostile HTTP requests: the cases, a raw-socket client that plays them, and a verdict.

A client for the local services, shared by tests/test_hostile.py (webmini's
servers must pass) and benchmarks/hostile_table.py (the same cases against
peers, as a table).
Every case is sent on a fresh TCP connection to a server serving
tests/hostile_app.py. Whatever the case, the server must never answer 5xx,
never leave the client hanging, never execute a request hidden in another
one's body (``/smuggled``), and must answer a good request afterwards.

``expect``:

* ``reject``: the first answer is a 4xx, or the connection closes without one;
* ``ok``: ``responses`` answers, all 2xx (pipelining, slow but valid clients);
* ``any``: valid but odd input; any non-5xx answer will do.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

SMUGGLED = b"SMUGGLED-REQUEST-EXECUTED"
H = b"Host: t\r\n"


@dataclass
class Case:
    """One hostile exchange: bytes to send (in ``pieces``, ``pause`` s apart)."""

    name: str
    group: str
    data: bytes
    expect: str = "reject"
    responses: int = 1
    pieces: int = 1
    pause: float = 0.0
    eof: bool = False  # half-close after sending (the client gave up)


@dataclass
class Outcome:
    """What the server did: statuses in order, whether it closed, hung, ran /smuggled."""

    statuses: list[int] = field(default_factory=list)
    closed: bool = False
    hang: bool = False
    smuggled: bool = False
    error: str = ""

    def verdict(self, case: Case) -> str:
        """``pass``, or why not (``5xx``, ``hang``, ``smuggled``, ``accepted``, ``wrong``)."""
        if any(s >= 500 for s in self.statuses):
            return "5xx"
        if self.smuggled:
            return "smuggled"
        if self.hang:
            return "hang"
        if case.expect == "reject":
            if not self.statuses:
                return "pass" if self.closed else "hang"
            return "pass" if 400 <= self.statuses[0] < 500 else "accepted"
        if case.expect == "ok":
            good = len(self.statuses) == case.responses and all(
                200 <= s < 300 for s in self.statuses)
            return "pass" if good else "wrong"
        return "pass"

    def summary(self) -> str:
        """A short description for tables and failure messages."""
        parts = [",".join(map(str, self.statuses)) or "-"]
        if self.closed:
            parts.append("closed")
        if self.hang:
            parts.append("HANG")
        if self.smuggled:
            parts.append("SMUGGLED")
        if self.error:
            parts.append(self.error)
        return " ".join(parts)


# ----------------------------------------------------------------------
# the raw client
# ----------------------------------------------------------------------


def _parse_responses(
    buf: bytes, closed: bool, head: bool = False
) -> tuple[list[tuple[int, bytes]], bytes, bool]:
    """Split complete responses off ``buf``: ([(status, body)], rest, close-delimited seen).

    ``head``: the first response answers a HEAD request (no body).
    """
    out: list[tuple[int, bytes]] = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out, buf, False
        lines = buf[:end].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            status = 999  # not HTTP at all: counted as a server fault
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = buf[end + 4:]
        if (head and not out) or status in (204, 304) or 100 <= status < 200:
            body, buf = b"", rest
            if status == 100:
                continue
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if len(rest) < n:
                return out, buf, False
            body, buf = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body, pos, done = b"", 0, False
            while True:
                nl = rest.find(b"\r\n", pos)
                if nl < 0:
                    break
                size = int(rest[pos:nl].split(b";")[0], 16)
                if size == 0:
                    tail = rest.find(b"\r\n\r\n", nl - 2 if nl >= 2 else 0)
                    if tail < 0:
                        break
                    buf, done = rest[tail + 4:], True
                    break
                if len(rest) < nl + 2 + size + 2:
                    break
                body += rest[nl + 2:nl + 2 + size]
                pos = nl + 2 + size + 2
            if not done:
                return out, buf, False
        else:
            if not closed:
                return out, buf, False
            out.append((status, rest))
            return out, b"", True
        out.append((status, body))


def play(host: str, port: int, case: Case, timeout: float = 6.0, linger: float = 0.3) -> Outcome:
    """Send ``case`` on a new connection and watch what comes back."""
    outcome = Outcome()
    sock = socket.create_connection((host, port), timeout=timeout)
    bodies: list[bytes] = []
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = case.data
        step = max(1, -(-len(data) // case.pieces)) if data else 1
        try:
            for i in range(0, len(data), step):
                sock.sendall(data[i:i + step])
                if case.pause:
                    time.sleep(case.pause)
            if case.eof:
                sock.shutdown(socket.SHUT_WR)
        except OSError as exc:  # the server closed early: fine, read what it said
            outcome.error = type(exc).__name__
        buf = b""
        deadline = time.monotonic() + timeout
        settle: float | None = None  # once answered, wait this long for more / a close
        while True:
            now = time.monotonic()
            limit = deadline if settle is None else min(deadline, settle)
            if now >= limit:
                if settle is None and not outcome.statuses:
                    outcome.hang = True
                break
            sock.settimeout(limit - now)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset: a close
                chunk = b""
            if not chunk:
                outcome.closed = True
            buf += chunk
            parsed, buf, _ = _parse_responses(buf, outcome.closed, data.startswith(b"HEAD "))
            for status, body in parsed:
                outcome.statuses.append(status)
                bodies.append(body)
            if outcome.closed:
                if buf.strip():
                    outcome.statuses.append(999)  # a truncated response
                break
            if case.expect == "ok":
                # Valid requests: wait (up to the timeout) for every answer.
                if len(outcome.statuses) >= case.responses and settle is None:
                    settle = time.monotonic() + 0.05
            elif outcome.statuses and settle is None:
                settle = time.monotonic() + linger
    finally:
        sock.close()
    outcome.smuggled = any(SMUGGLED in b for b in bodies)
    return outcome


def alive(host: str, port: int, timeout: float = 5.0) -> bool:
    """True when a plain ``GET /`` on a new connection answers 200 "ok"."""
    try:
        out = play(host, port, Case("probe", "probe", b"GET / HTTP/1.1\r\nHost: t\r\n"
                                    b"Connection: close\r\n\r\n", expect="ok"), timeout=timeout)
    except OSError:
        return False
    return out.statuses == [200]


# ----------------------------------------------------------------------
# the cases
# ----------------------------------------------------------------------


def _post(target: bytes, headers: bytes, body: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST " + target + b" " + version + b"\r\n" + H + headers + b"\r\n" + body


def _cl(body: bytes) -> bytes:
    return b"Content-Length: " + str(len(body)).encode() + b"\r\n"


def _chunked(body: bytes, extra: bytes = b"") -> bytes:
    return _post(b"/echo", b"Transfer-Encoding: chunked\r\n" + extra, body)


SMUGGLE = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
GOOD_GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def _multipart(parts: list[bytes], boundary: bytes = b"XyZ", close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    if close:
        body += b"--" + boundary + b"--\r\n"
    ctype = b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
    return _post(b"/form", ctype + _cl(body), body)


def _field(name: bytes, value: bytes) -> bytes:
    return b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value


def _cases() -> list[Case]:
    c: list[Case] = []

    def add(name: str, group: str, data: bytes, **kw: object) -> None:
        c.append(Case(name, group, data, **kw))  # type: ignore[arg-type]

    # -- Content-Length framing (RFC 9112 §6.3, §8.6) ------------------------------------
    g = "content-length"
    add("two different lengths", g, _post(b"/echo", b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"))
    add("length list differs", g, _post(b"/echo", b"Content-Length: 3, 4\r\n", b"abcd"))
    add("plus sign", g, _post(b"/echo", b"Content-Length: +3\r\n", b"abc"))
    add("underscore digits", g, _post(b"/echo", b"Content-Length: 1_0\r\n", b"abcdefghij"))
    add("negative", g, _post(b"/echo", b"Content-Length: -1\r\n", b"a"))
    add("hex", g, _post(b"/echo", b"Content-Length: 0x3\r\n", b"abc"))
    add("decimal point", g, _post(b"/echo", b"Content-Length: 3.0\r\n", b"abc"))
    add("exponent", g, _post(b"/echo", b"Content-Length: 3e0\r\n", b"abc"))
    add("empty value", g, _post(b"/echo", b"Content-Length: \r\n", b"abc"))
    add("letters", g, _post(b"/echo", b"Content-Length: abc\r\n", b"abc"))
    add("inner space", g, _post(b"/echo", b"Content-Length: 1 0\r\n", b"abcdefghij"))
    add("huge", g, _post(b"/echo", b"Content-Length: 99999999999999999999999\r\n", b"abc"))
    add("over max_body_size", g, _post(b"/echo", b"Content-Length: 300000\r\n", b"a" * 1000), eof=True)
    add("space before colon", g, _post(b"/echo", b"Content-Length : 3\r\n", b"abc"))
    add("tab before colon", g, _post(b"/echo", b"Content-Length\t: 3\r\n", b"abc"))
    add("obs-fold value", g, _post(b"/echo", b"Content-Length:\r\n 3\r\n", b"abc"))
    # A body on HEAD has no meaning (RFC 9110 §9.3.2) but its framing is clear.
    add("HEAD with a length", g, b"HEAD / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde",
        expect="any")
    add("body shorter than length", g, _post(b"/echo", b"Content-Length: 10\r\n", b"abc"), eof=True)
    add("same length twice", g, _post(b"/echo", b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"),
        expect="any")
    add("GET with a body hiding a request", g,
        b"GET / HTTP/1.1\r\nHost: t\r\n" + _cl(SMUGGLE) + b"\r\n" + SMUGGLE, expect="any")

    # -- Transfer-Encoding framing (RFC 9112 §6.1, §7) --------------------------------------
    g = "transfer-encoding"
    add("chunked and length", g, _post(b"/echo", b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                                       b"3\r\nabc\r\n0\r\n\r\n"))
    add("unknown coding and length", g, _post(b"/echo", b"Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n",
                                              b"abc"))
    add("chunked not last", g, _post(b"/echo", b"Transfer-Encoding: chunked, gzip\r\n", b"3\r\nabc\r\n0\r\n\r\n"))
    add("gzip then chunked", g, _post(b"/echo", b"Transfer-Encoding: gzip, chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"))
    add("identity", g, _post(b"/echo", b"Transfer-Encoding: identity\r\n" + _cl(b"abc"), b"abc"))
    add("unknown coding alone", g, _post(b"/echo", b"Transfer-Encoding: foo\r\n", b"abc"), eof=True)
    add("two TE headers", g, _post(b"/echo", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                                   b"3\r\nabc\r\n0\r\n\r\n"))
    add("TE space before colon", g, _post(b"/echo", b"Transfer-Encoding : chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"))
    add("TE vertical tab", g, _post(b"/echo", b"Transfer-Encoding:\x0bchunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"))
    add("TE misspelt", g, _post(b"/echo", b"Transfer-Encoding: chunk\r\n", b"3\r\nabc\r\n0\r\n\r\n"), eof=True)
    add("TE obs-fold", g, _post(b"/echo", b"Transfer-Encoding:\r\n chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"))
    add("TE in HTTP/1.0", g, _post(b"/echo", b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n",
                                   version=b"HTTP/1.0"))
    add("TE with parameters", g, _post(b"/echo", b"Transfer-Encoding: chunked;q=1\r\n", b"3\r\nabc\r\n0\r\n\r\n"))
    add("TE NUL", g, _post(b"/echo", b"Transfer-Encoding: chunked\x00\r\n", b"3\r\nabc\r\n0\r\n\r\n"))

    # -- smuggling pairs ---------------------------------------------------------------------
    g = "smuggling"
    add("CL.TE", g, _post(b"/", b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLE))
    add("TE.CL", g, _post(b"/", b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                          b"2c\r\n" + SMUGGLE[:44] + b"\r\n0\r\n\r\n"))
    add("TE.TE obfuscated", g, _post(b"/", b"Transfer-Encoding: chunked\r\nTransfer-encoding: cow\r\n",
                                     b"0\r\n\r\n" + SMUGGLE))
    add("CL in trailer-like header", g, _post(b"/", b"Content-Length: 0\r\nContent-Length: 40\r\n", SMUGGLE))
    add("TE with leading comma", g, _post(b"/", b"Transfer-Encoding: ,chunked\r\n", b"0\r\n\r\n" + SMUGGLE))
    add("CL with NUL in name", g, _post(b"/", b"Content-Length\x00: 40\r\n", SMUGGLE))
    add("chunk size hiding a request", g, _chunked(b"0x0\r\n\r\n" + SMUGGLE))
    add("LF-only chunk lines", g, _chunked(b"3\nabc\n0\n\n" + SMUGGLE), eof=True)
    add("chunk ext hiding CRLF", g, _chunked(b"3;x\nabc\r\n0\r\n\r\n" + SMUGGLE), eof=True)
    add("bare CR line ending in head", g, b"POST / HTTP/1.1\r\nHost: t\rContent-Length: 40\r\n\r\n" + SMUGGLE)

    # -- header syntax (RFC 9110 §5, RFC 9112 §5) ---------------------------------------------
    g = "header-syntax"
    add("line without colon", g, b"GET / HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n")
    add("space before colon", g, b"GET / HTTP/1.1\r\nHost : t\r\n\r\n")
    add("name with parenthesis", g, b"GET / HTTP/1.1\r\nHost: t\r\nX(y): 1\r\n\r\n")
    add("empty name", g, b"GET / HTTP/1.1\r\nHost: t\r\n: value\r\n\r\n")
    add("NUL in value", g, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n")
    add("bare CR in value", g, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n")
    add("DEL in value", g, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x7fb\r\n\r\n")
    add("obs-fold", g, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n")
    add("leading whitespace first header", g, b"GET / HTTP/1.1\r\n Host: t\r\n\r\n")
    add("non-ASCII name", g, b"GET / HTTP/1.1\r\nHost: t\r\nX-\xe9: 1\r\n\r\n")
    add("missing Host in 1.1", g, b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n")
    add("two Host headers", g, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    add("Host with space", g, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n")
    add("Host with slash", g, b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", expect="any")
    add("Host with userinfo", g, b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", expect="any")
    add("name with space inside", g, b"GET / HTTP/1.1\r\nHost: t\r\nX A: 1\r\n\r\n")
    add("colon only", g, b"GET / HTTP/1.1\r\nHost: t\r\n:\r\n\r\n")
    add("binary garbage header", g, b"GET / HTTP/1.1\r\nHost: t\r\n\x01\x02\x03\r\n\r\n")
    add("non-UTF-8 cookie", g, b"GET /?a=1 HTTP/1.1\r\nHost: t\r\nCookie: a=\xff\xfe\r\n\r\n", expect="any")
    add("underscore header", g, b"GET / HTTP/1.1\r\nHost: t\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n", expect="any")

    # -- request line (RFC 9112 §3) ---------------------------------------------------------------
    g = "request-line"
    add("version 9.9", g, b"GET / HTTP/9.9\r\nHost: t\r\n\r\n")
    add("version one.one", g, b"GET / HTTP/one.one\r\nHost: t\r\n\r\n")
    add("lower-case version", g, b"GET / http/1.1\r\nHost: t\r\n\r\n")
    add("version 2.0", g, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n")
    add("HTTP/0.9 request", g, b"GET /\r\n\r\n")
    add("double space", g, b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n")
    add("tabs as separators", g, b"GET\t/\tHTTP/1.1\r\nHost: t\r\n\r\n")
    add("bare CR splits the line", g, b"GET / HTTP/1.1\rHost: t\r\n\r\n")
    add("empty method", g, b" / HTTP/1.1\r\nHost: t\r\n\r\n")
    add("method with parenthesis", g, b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n")
    add("space in target", g, b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n")
    add("NUL in target", g, b"GET /a\x00b HTTP/1.1\r\nHost: t\r\n\r\n")
    add("non-ASCII target", g, b"GET /\xff HTTP/1.1\r\nHost: t\r\n\r\n")
    add("invalid UTF-8 escape", g, b"GET /%ff%fe HTTP/1.1\r\nHost: t\r\n\r\n")
    add("request line 9 KiB", g, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    add("request line 64 KiB", g, b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    add("CONNECT", g, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    add("TLS hello on plain HTTP", g, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64)
    add("HTTP/2 preface", g, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    add("only CRLFs", g, b"\r\n" * 20, eof=True)
    add("unknown method", g, b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n")
    add("TRACE", g, b"TRACE / HTTP/1.1\r\nHost: t\r\n\r\n")

    # -- limits ---------------------------------------------------------------------------------------------
    g = "limits"
    add("101 header fields", g, b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(
        b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n")
    add("one 20 KiB header", g, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    add("headers over 16 KiB in total", g, b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(
        b"X-%d: %s\r\n" % (i, b"v" * 400) for i in range(60)) + b"\r\n")
    add("cookie 20 KiB", g, b"GET / HTTP/1.1\r\nHost: t\r\nCookie: a=" + b"b" * 20000 + b"\r\n\r\n")
    add("101 query fields", g, b"GET /?" + b"&".join(b"f%d=1" % i for i in range(101)) + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    form = b"&".join(b"f%d=1" % i for i in range(101))
    add("101 form fields", g, _post(b"/form", b"Content-Type: application/x-www-form-urlencoded\r\n" + _cl(form), form))
    add("form not UTF-8", g, _post(b"/form", b"Content-Type: application/x-www-form-urlencoded\r\n" + _cl(b"a=%ff"), b"a=%ff"))
    big = b"a" * 300000
    add("body over the limit", g, _post(b"/echo", _cl(big), big))
    add("query not UTF-8", g, b"GET /?a=%ff HTTP/1.1\r\nHost: t\r\n\r\n")

    # -- chunked bodies (RFC 9112 §7.1) ----------------------------------------------------------------------
    g = "chunked"
    add("size 0x5", g, _chunked(b"0x5\r\nabcde\r\n0\r\n\r\n"))
    add("size 1_0", g, _chunked(b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"))
    add("size 40 hex digits", g, _chunked(b"1" * 40 + b"\r\nabc\r\n0\r\n\r\n"))
    add("negative size", g, _chunked(b"-5\r\nabcde\r\n0\r\n\r\n"))
    add("size with plus", g, _chunked(b"+5\r\nabcde\r\n0\r\n\r\n"))
    add("size with space", g, _chunked(b"5 5\r\nabcde\r\n0\r\n\r\n"))
    add("data longer than size", g, _chunked(b"3\r\nabcdef\r\n0\r\n\r\n"))
    add("no CRLF after data", g, _chunked(b"3\r\nabc0\r\n\r\n"))
    add("no final chunk", g, _chunked(b"3\r\nabc\r\n"), eof=True)
    add("data shorter than size", g, _chunked(b"10\r\nabc"), eof=True)
    add("empty size line", g, _chunked(b"\r\nabc\r\n0\r\n\r\n"))
    add("16 hex digits", g, _chunked(b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n"))
    add("over max_body_size", g, _chunked(b"40001\r\n" + b"a" * 0x40001 + b"\r\n0\r\n\r\n"))
    add("huge chunk extension", g, _chunked(b"3;" + b"e" * 20000 + b"\r\nabc\r\n0\r\n\r\n"))
    # Extensions are skipped unread by most servers: no framing depends on them.
    add("NUL in extension", g, _chunked(b"3;a\x00b\r\nabc\r\n0\r\n\r\n"), expect="any")
    add("bad trailer name", g, _chunked(b"3\r\nabc\r\n0\r\nBad Name: x\r\n\r\n"))
    add("valid with extension and trailer", g, _chunked(b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), expect="ok")
    # The answer is sent before the unread body is skipped: it may be a 200,
    # but the bad chunk closes the connection and nothing after it runs.
    add("chunked to a handler not reading it", g, _post(b"/", b"Transfer-Encoding: chunked\r\n",
                                                       b"zz\r\nabc\r\n0\r\n\r\n" + SMUGGLE), expect="any")

    # -- multipart abuse -------------------------------------------------------------------------------------
    g = "multipart"
    add("no boundary", g, _post(b"/form", b"Content-Type: multipart/form-data\r\n" + _cl(b"x"), b"x"))
    add("never closed", g, _multipart([_field(b"a", b"1")], close=False))
    add("101 parts", g, _multipart([_field(b"f%d" % i, b"1") for i in range(101)]))
    add("part header 20 KiB", g, _multipart([b"X-Big: " + b"a" * 20000 + b"\r\n" + _field(b"a", b"1")]))
    add("part without disposition", g, _multipart([b"Content-Type: text/plain\r\n\r\nabc"]))
    add("name not UTF-8", g, _multipart([_field(b"\xff\xfe", b"1")]))
    add("value not UTF-8", g, _multipart([_field(b"a", b"\xff\xfe")]))
    add("boundary 200 chars", g, _multipart([_field(b"a", b"1")], boundary=b"b" * 200), expect="any")
    add("garbage body", g, _post(b"/form", b"Content-Type: multipart/form-data; boundary=XyZ\r\n" + _cl(b"garbage"),
                                 b"garbage"))
    add("upload over the limit", g, _multipart([
        b'Content-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n' + b"a" * 300000]))
    add("part header without colon", g, _multipart([b"NoColon\r\n" + _field(b"a", b"1")]))
    add("nested multipart/mixed", g, _multipart([
        b'Content-Disposition: form-data; name="a"\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n'
        b"--in\r\n\r\nx\r\n--in--"]), expect="any")

    # -- JSON -------------------------------------------------------------------------------------------------
    g = "json"
    deep = b"[" * 100000 + b"]" * 100000
    add("nesting 100k deep", g, _post(b"/json", b"Content-Type: application/json\r\n" + _cl(deep), deep))
    add("nesting 100k objects", g, _post(b"/json", b"Content-Type: application/json\r\n" + _cl(b'{"a":' * 50000),
                                        b'{"a":' * 50000))
    num = b"1" * 5000
    add("5000-digit integer", g, _post(b"/json", b"Content-Type: application/json\r\n" + _cl(num), num))
    add("invalid JSON", g, _post(b"/json", b"Content-Type: application/json\r\n" + _cl(b"{x"), b"{x"))
    add("JSON not UTF-8", g, _post(b"/json", b"Content-Type: application/json\r\n" + _cl(b'"\xff"'), b'"\xff"'))
    add("empty JSON body", g, _post(b"/json", b"Content-Type: application/json\r\n" + _cl(b""), b""))
    add("NaN", g, _post(b"/json", b"Content-Type: application/json\r\n" + _cl(b"NaN"), b"NaN"), expect="any")

    # -- pipelining --------------------------------------------------------------------------------------------
    g = "pipelining"
    add("three GETs", g, GOOD_GET * 3, expect="ok", responses=3)
    add("fifty GETs", g, GOOD_GET * 50, expect="ok", responses=50)
    add("POST then GET", g, _post(b"/echo", _cl(b"abc"), b"abc") + GOOD_GET, expect="ok", responses=2)
    add("chunked then GET", g, _chunked(b"3\r\nabc\r\n0\r\n\r\n") + GOOD_GET, expect="ok", responses=2)
    add("bad request after a good one", g, GOOD_GET + b"GET / HTTP/1.1\r\nHost : t\r\n\r\n" + SMUGGLE,
        expect="any")
    add("bad framing then a request", g, _post(b"/", b"Content-Length: +3\r\n", b"abc") + SMUGGLE)
    add("pipelined over a short body", g, _post(b"/echo", b"Content-Length: 1\r\n", b"ab" + SMUGGLE[1:]),
        expect="any")

    # -- slow and broken clients ------------------------------------------------------------------------------
    g = "slow-client"
    add("trickled request", g, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n\r\n", expect="ok",
        pieces=8, pause=0.03)
    add("trickled body", g, _post(b"/echo", _cl(b"a" * 64), b"a" * 64), expect="ok", pieces=8, pause=0.03)
    add("connect and leave", g, b"", eof=True)
    add("half a request line then leave", g, b"GET /ha", eof=True)
    add("half the headers then leave", g, b"GET / HTTP/1.1\r\nHost: t\r\nX-A:", eof=True)
    add("half the body then leave", g, _post(b"/echo", b"Content-Length: 100\r\n", b"a" * 50), eof=True)
    add("half a chunk then leave", g, _chunked(b"10\r\nabc"), eof=True)
    return c


CASES: list[Case] = _cases()
GROUPS: list[str] = list(dict.fromkeys(case.group for case in CASES))
