"""TechEmpower's checks on one server: content types, headers, JSON shapes, fortunes, clamping.

``verify(base_url, db_params)`` returns a list of problems (empty: the
server passes). ``db_params`` (pymysql keywords for the ``hello_world``
database) lets it check that ``/updates`` really wrote what it answered.

    .venv/bin/python benchmarks/tfb/verify.py http://127.0.0.1:8080 [mysql://user:pw@host:port/hello_world]
"""

from __future__ import annotations

import http.client
import json
import sys
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urlsplit

FORTUNES = [
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (0, "Additional fortune added at request time."),
    (3, "After enough decimal points, nobody gives a damn."),
    (7, "Any program that runs right is obsolete."),
    (10, "Computers make very fast, very accurate mistakes."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (9, "Feature: A bug with seniority."),
    (1, "fortune: No such file or directory"),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]


def expected_fortunes_html() -> str:
    """The reference page TFB compares against (whitespace and entity spelling aside)."""
    from html import escape

    rows = "".join(f"<tr><td>{i}</td><td>{escape(m)}</td></tr>" for i, m in FORTUNES)
    return ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
            f"<tr><th>id</th><th>message</th></tr>{rows}</table></body></html>")


class _Tokens(HTMLParser):
    """An HTML page as a list of (kind, value) tokens, blank text dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple[str, str]] = []

    def handle_decl(self, decl: str) -> None:
        self.tokens.append(("decl", decl.lower()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tokens.append(("start", tag))

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if data.strip():
            if self.tokens and self.tokens[-1][0] == "data":
                self.tokens[-1] = ("data", self.tokens[-1][1] + data.strip())
            else:
                self.tokens.append(("data", data.strip()))


def html_tokens(page: str) -> list[tuple[str, str]]:
    """Tokens of ``page``: tags, and text with entities resolved (as TFB's checker does)."""
    parser = _Tokens()
    parser.feed(page)
    parser.close()
    return parser.tokens


class Response:
    """Status, headers (lower-case names) and body of one answer."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The first header ``name`` (any case), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


def get(base: str, path: str) -> Response:
    """GET ``path`` on ``base`` (one connection per request)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": "*/*"})
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


class Checker:
    """Collects problems of one server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.problems: list[str] = []

    def fail(self, path: str, what: str) -> None:
        """Record one problem."""
        self.problems.append(f"{path}: {what}")

    def fetch(self, path: str, content_type: str) -> Response | None:
        """GET and check status, content type, Server, Date and the body's length."""
        try:
            r = get(self.base, path)
        except OSError as exc:
            self.fail(path, f"request failed: {exc}")
            return None
        if r.status != 200:
            self.fail(path, f"status {r.status}, body {r.body[:200]!r}")
            return None
        ctype = (r.header("Content-Type") or "").lower().replace(" ", "")
        if ctype.split(";")[0] != content_type:
            self.fail(path, f"Content-Type {r.header('Content-Type')!r}, expected {content_type}")
        if content_type == "text/html" and ctype != "text/html;charset=utf-8":
            self.fail(path, f"Content-Type {r.header('Content-Type')!r} lacks charset=utf-8")
        if not r.header("Server"):
            self.fail(path, "no Server header")
        date = r.header("Date")
        try:
            if date is None or parsedate_to_datetime(date) is None:
                raise ValueError(date)
        except (TypeError, ValueError):
            self.fail(path, f"Date header missing or not an HTTP date: {date!r}")
        length = r.header("Content-Length")
        if length is not None and int(length) != len(r.body):
            self.fail(path, f"Content-Length {length} but {len(r.body)} bytes")
        return r

    def json_body(self, path: str) -> Any:
        """Fetch ``path`` as application/json and decode it."""
        r = self.fetch(path, "application/json")
        if r is None:
            return None
        try:
            return json.loads(r.body)
        except ValueError:
            self.fail(path, f"not JSON: {r.body[:200]!r}")
            return None

    def world(self, path: str, obj: Any) -> bool:
        """True when ``obj`` is ``{"id": 1..10000, "randomNumber": 1..10000}``."""
        if (
            not isinstance(obj, dict)
            or set(obj) != {"id", "randomNumber"}
            or not all(type(obj[k]) is int and 1 <= obj[k] <= 10000 for k in obj)
        ):
            self.fail(path, f"not a World object: {obj!r}")
            return False
        return True

    def worlds(self, path: str, expected: int) -> list[dict[str, int]]:
        """Fetch a list of ``expected`` World objects."""
        data = self.json_body(path)
        if data is None:
            return []
        if not isinstance(data, list) or len(data) != expected:
            n = len(data) if isinstance(data, list) else type(data).__name__
            self.fail(path, f"expected a list of {expected} worlds, got {n}")
            return []
        return data if all(self.world(path, w) for w in data) else []


CLAMPING = [("", 1), ("?queries=", 1), ("?queries=foo", 1), ("?queries=0", 1),
            ("?queries=-5", 1), ("?queries=1", 1), ("?queries=7", 7), ("?queries=20", 20),
            ("?queries=500", 500), ("?queries=501", 500), ("?queries=99999", 500)]


def verify(base: str, db_params: dict[str, Any] | None = None) -> list[str]:
    """Run every check against the server at ``base``; return the problems found."""
    c = Checker(base.rstrip("/"))

    if (data := c.json_body("/json")) is not None and data != {"message": "Hello, World!"}:
        c.fail("/json", f"body {data!r}")

    r = c.fetch("/plaintext", "text/plain")
    if r is not None and r.body != b"Hello, World!":
        c.fail("/plaintext", f"body {r.body!r}")

    ids = set()
    for _ in range(20):
        obj = c.json_body("/db")
        if obj is None or not c.world("/db", obj):
            break
        ids.add(obj["id"])
    if len(ids) < 2:
        c.fail("/db", f"20 requests gave {len(ids)} distinct id(s): not random per request")

    for route in ("/queries", "/updates"):
        for query, expected in CLAMPING:
            c.worlds(route + query, expected)

    r = c.fetch("/fortunes", "text/html")
    if r is not None:
        try:
            page = r.body.decode("utf-8")
        except UnicodeDecodeError:
            c.fail("/fortunes", "body is not UTF-8")
        else:
            got, want = html_tokens(page), html_tokens(expected_fortunes_html())
            if got != want:
                diff = next((f"token {i}: {g!r} != {w!r}" for i, (g, w) in enumerate(zip(got, want, strict=False))
                             if g != w), f"{len(got)} tokens, expected {len(want)}")
                c.fail("/fortunes", f"page differs from TFB's: {diff}")
            if "<script>" in page:
                c.fail("/fortunes", "unescaped <script> in the page")

    if db_params is not None:
        _check_updates_persist(c, db_params)
    return c.problems


def _check_updates_persist(c: Checker, db_params: dict[str, Any]) -> None:
    import pymysql

    worlds = c.worlds("/updates?queries=20", 20)
    if not worlds:
        return
    conn = pymysql.connect(**db_params, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, randomNumber FROM World WHERE id IN %s",
                        ([w["id"] for w in worlds],))
            stored = dict(cur.fetchall())
    finally:
        conn.close()
    answered = {w["id"]: w["randomNumber"] for w in worlds}
    if stored != answered:
        c.fail("/updates", f"the database does not hold the answered numbers: {stored} != {answered}")


def db_params_from_url(url: str) -> dict[str, Any]:
    """pymysql keywords from ``mysql://user:password@host:port/database``."""
    parts = urlsplit(url)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or ""), "password": unquote(parts.password or ""),
            "database": parts.path.lstrip("/").split("?")[0]}


def main(argv: list[str]) -> int:
    """Verify the server given on the command line."""
    if not argv:
        print(__doc__)
        return 2
    problems = verify(argv[0], db_params_from_url(argv[1]) if len(argv) > 1 else None)
    for p in problems:
        print("FAIL", p)
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
