"""Property-based tests (hypothesis) of request parsing: line and headers, query, cookies, forms, multipart.

Each property runs a bounded number of examples (see SETTINGS) so the whole
module stays within a few seconds.
"""

from __future__ import annotations

import contextlib
import string
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import webmini as web
from webmini.errors import HTTPError
from webmini.request import _parse_cookie_header, parse_query
from webmini.serving.strict import BadRequestHead, check_head
from webmini.testing import TestClient

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
token = st.text(TCHAR, min_size=1, max_size=12)
# Visible ASCII plus SP/HTAB inside (no leading/trailing whitespace), as RFC 9110 field-content.
vchar = "".join(chr(c) for c in range(0x21, 0x7F))
field_value = st.text(vchar + " \t", max_size=40).map(str.strip)
path = st.lists(st.text(string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@",
                        min_size=1, max_size=8), max_size=4).map(lambda p: "/" + "/".join(p))
header_name = token.filter(lambda n: n.lower() not in (
    "host", "content-length", "transfer-encoding", "connection", "upgrade", "expect"))


def _head(method: str, target: str, version: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: example.org"]
    lines += [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- request line and headers (the dev server's strict check) ----------------------------


@SETTINGS
@given(token, path, st.sampled_from(["1.0", "1.1"]),
       st.lists(st.tuples(header_name, field_value), max_size=8))
def test_valid_heads_pass(method: str, target: str, version: str, headers: list) -> None:
    """Every well-formed head passes the strict check."""
    check_head(_head(method, target, version, headers))


@SETTINGS
@given(token, path, st.lists(st.tuples(header_name, field_value), min_size=1, max_size=5),
       st.data())
def test_one_bad_byte_is_refused(method: str, target: str, headers: list, data: st.DataObject) -> None:
    """A control byte or a colon-less line anywhere in the headers makes the head a 400."""
    i = data.draw(st.integers(0, len(headers) - 1))
    name, value = headers[i]
    bad = data.draw(st.sampled_from(["\x00", "\x7f", "\x0b", "\x1b", "\r"]))
    where = data.draw(st.sampled_from(["value", "colon", "name"]))
    if where == "value":
        headers[i] = (name, value + bad + "x")
    elif where == "colon":
        headers[i] = (name + " ", value)  # whitespace before the colon
    else:
        headers[i] = (name + bad, value)
    with pytest.raises(BadRequestHead):
        check_head(_head(method, target, "1.1", headers))


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_check(blob: bytes) -> None:
    """Whatever the bytes, the check passes or says BadRequestHead; nothing else escapes."""
    head = b"GET / HTTP/1.1\r\nHost: a\r\n" + blob.replace(b"\r\n\r\n", b"") + b"\r\n\r\n"
    with contextlib.suppress(BadRequestHead):
        check_head(head)


@SETTINGS
@given(st.lists(st.integers(0, 10**6), min_size=2, max_size=3, unique=True))
def test_conflicting_lengths_are_refused(lengths: list[int]) -> None:
    """Two different Content-Length values are always a 400 (RFC 9112 §6.3)."""
    head = b"POST / HTTP/1.1\r\nHost: a\r\n" + b"".join(
        b"Content-Length: %d\r\n" % n for n in lengths) + b"\r\n"
    with pytest.raises(BadRequestHead):
        check_head(head)


@SETTINGS
@given(st.text(string.digits, min_size=1, max_size=4), st.sampled_from(["+", "-", "_", " ", "0x", "."]),
       st.booleans())
def test_only_plain_digit_lengths_pass(digits: str, junk: str, before: bool) -> None:
    """Content-Length is 1*DIGIT: a sign, underscore, inner space, hex or decimal point is a 400."""
    # A leading space is optional whitespace, not part of the value.
    value = junk + digits if before and junk != " " else digits + junk + "1"
    head = f"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\n".encode()
    with pytest.raises(BadRequestHead):
        check_head(head)


# -- query strings and forms ---------------------------------------------------------------

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
pairs = st.lists(st.tuples(text.filter(bool), text), max_size=15)


def _expected(items: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in items:
        out[k] = v
    return out


@SETTINGS
@given(pairs)
def test_query_round_trip(items: list[tuple[str, str]]) -> None:
    """urlencode then parse_query gives back the last value of each name, and every value."""
    last, multi = parse_query(urlencode(items))
    assert last == _expected(items)
    for key, values in multi.items():
        assert values == [v for k, v in items if k == key]


@SETTINGS
@given(st.text(max_size=60))
def test_any_query_is_fields_or_4xx(qs: str) -> None:
    """Any query string parses or raises a 4xx HTTPError: never another exception."""
    try:
        parse_query(qs)
    except HTTPError as exc:
        assert 400 <= int(str(exc.status).split()[0]) < 500


class _Echo:
    def GET(self):  # noqa: N802 - web.py's method names
        return dict(web.input())

    def POST(self):  # noqa: N802
        return {k: (v if isinstance(v, str) else "<file>") for k, v in web.input().items()}


_client = TestClient(web.application(("/", "_Echo"), {"_Echo": _Echo}).wsgifunc())


@SETTINGS
@given(pairs)
def test_form_round_trip(items: list[tuple[str, str]]) -> None:
    """A urlencoded form reaches web.input() intact."""
    r = _client.post("/", data=urlencode(items),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status.startswith("200") and r.json() == _expected(items)


@SETTINGS
@given(st.binary(max_size=200))
def test_any_form_body_is_200_or_4xx(body: bytes) -> None:
    """Any urlencoded body is parsed or refused with a 4xx: never a 500."""
    r = _client.post("/", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status[:1] in ("2", "4"), r.status


# -- cookies ----------------------------------------------------------------------------------


cookie_name = st.text(TCHAR.replace("%", ""), min_size=1, max_size=10)


@SETTINGS
@given(st.lists(st.tuples(cookie_name, text), max_size=8))
def test_cookie_round_trip(items: list[tuple[str, str]]) -> None:
    """Percent-encoded cookies come back decoded; the first of a repeated name wins."""
    header = "; ".join(f"{n}={quote(v, safe='')}" for n, v in items)
    expected: dict[str, str] = {}
    for n, v in items:
        expected.setdefault(n, v)
    assert _parse_cookie_header(header) == expected


@SETTINGS
@given(st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=80))
def test_any_cookie_header_is_cookies_or_400(header: str) -> None:
    """A Cookie header of any latin-1 text (as PEP 3333 gives it) parses or is a 400."""
    try:
        _parse_cookie_header(header)
    except HTTPError as exc:
        assert str(exc.status).startswith("400")


# -- multipart ----------------------------------------------------------------------------------

boundary = st.text(string.ascii_letters + string.digits + "'()+_,-./:=?", min_size=1, max_size=40)
part_name = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=10)


def _multipart(bnd: str, fields: list[tuple[str, str]]) -> bytes:
    out = b""
    for name, value in fields:
        out += (f"--{bnd}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                .encode() + value.encode("utf-8") + b"\r\n")
    return out + f"--{bnd}--\r\n".encode()


@SETTINGS
@given(boundary, st.lists(st.tuples(part_name, text.filter(lambda v: "\r" not in v and "\n" not in v)),
                          max_size=8))
def test_multipart_round_trip(bnd: str, fields: list[tuple[str, str]]) -> None:
    """A multipart form with any valid boundary reaches web.input() intact."""
    body = _multipart(bnd, fields)
    if any(f"--{bnd}".encode() in v.encode() for _, v in fields):
        return  # a value containing the delimiter is not a valid body
    r = _client.post("/", data=body,
                     headers={"Content-Type": f'multipart/form-data; boundary="{bnd}"'})
    assert r.status.startswith("200"), (r.status, r.text)
    assert r.json() == _expected(fields)


@SETTINGS
@given(boundary, st.binary(max_size=300))
def test_any_multipart_body_is_200_or_4xx(bnd: str, body: bytes) -> None:
    """Any bytes sent as multipart are parsed or refused with a 4xx: never a 500."""
    r = _client.post("/", data=body, headers={"Content-Type": f"multipart/form-data; boundary={bnd}"})
    assert r.status[:1] in ("2", "4"), r.status
