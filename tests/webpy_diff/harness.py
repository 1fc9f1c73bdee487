"""Run one web.py application file on web.py 0.76 and on webmini, and compare the answers.

The app file is loaded twice from the same source: once as written
(``import web``), once with that line changed to ``import webmini as web``.
Each copy is driven through its WSGI callable with the same requests; each
side keeps its own cookie jar. Responses are compared on status, body and
the headers that matter (Location, Set-Cookie, the media type, X-*).
"""

from __future__ import annotations

import io
import os
import re
import sys
import types
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

APPS = Path(__file__).parent / "apps"
#: Every request is sent as http://localhost:8080/...
REQUEST_BASE = "http://localhost:8080/"
FLAVOURS = ("webpy", "webmini")


def load_app(name: str, flavour: str, data_dir: Path) -> types.ModuleType:
    """Execute ``apps/<name>.py`` for ``flavour``; return the module (with ``app``)."""
    source = (APPS / f"{name}.py").read_text()
    if flavour == "webmini":
        assert len(re.findall(r"^import web$", source, re.M)) == 1, "one `import web` line"
        source = re.sub(r"^import web$", "import webmini as web", source, count=1, flags=re.M)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WEBPY_DIFF_DIR"] = str(data_dir)
    module = types.ModuleType(f"webpy_diff_{name}_{flavour}")
    module.__file__ = str(APPS / f"{name}.py")
    sys.modules[module.__name__] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


@dataclass
class Answer:
    """One response, as the client saw it."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of header ``name``."""
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[-1] if found else None

    def all(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Side:
    """One flavour of the app, with its own cookie jar."""

    flavour: str
    module: types.ModuleType
    cookies: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None,
             files: dict[str, tuple[str, bytes, str]] | None = None,
             env: dict[str, Any] | None = None) -> Answer:
        """Send one request through the app's WSGI callable."""
        parts = urlsplit(path)
        body = b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query, "SERVER_NAME": "localhost", "SERVER_PORT": "8080",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost:8080",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        if files:
            boundary = "diffboundary42"
            chunks = []
            for k, v in (data or {}).items():
                chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
            for k, (filename, content, ctype) in files.items():
                chunks.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{filename}"\r\n'
                    f"Content-Type: {ctype}\r\n\r\n".encode() + content + b"\r\n")
            chunks.append(f"--{boundary}--\r\n".encode())
            body = b"".join(chunks)
            environ["CONTENT_TYPE"] = f"multipart/form-data; boundary={boundary}"
        elif isinstance(data, dict):
            body = urlencode(data, doseq=True).encode()
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        elif isinstance(data, (str, bytes)):
            body = data.encode() if isinstance(data, str) else data
        for k, v in (headers or {}).items():
            key = k.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = v
        if body or method in ("POST", "PUT", "PATCH"):
            environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        environ.update(env or {})
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = status, list(headers)
            return lambda _data: None

        result = self.module.app.wsgifunc()(environ, start_response)
        try:
            out = b"".join(c if isinstance(c, bytes) else str(c).encode() for c in result)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        answer = Answer(seen["status"], seen["headers"], out)
        for raw in answer.all("Set-Cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if _expired(raw):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.coded_value
        return answer


def _expired(raw: str) -> bool:
    low = raw.lower()
    if "max-age=0" in low:
        return True
    m = re.search(r"expires=[a-z]{3}, \d\d[ -][a-z]{3}[ -](\d{4})", low)
    return bool(m and int(m.group(1)) < 2000)


def cookie_shape(raw: str, secret_values: set[str]) -> tuple[Any, ...]:
    """What a Set-Cookie means, format aside: name, value, path, domain, expired, flags.

    SameSite is left out (webmini adds ``SameSite=Lax`` to session cookies:
    an intended difference); values in ``secret_values`` (random session ids)
    compare as equal.
    """
    first, *attrs = [p.strip() for p in raw.split(";")]
    name, _, value = first.partition("=")
    value = "<random>" if value in secret_values or re.fullmatch(r"[0-9a-f]{40}", value) else value
    opts = {}
    for a in attrs:
        k, _, v = a.partition("=")
        opts[k.strip().lower()] = v.strip()
    return (name, "" if _expired(raw) else value, opts.get("path", "/"), opts.get("domain"),
            _expired(raw), "httponly" in opts, "secure" in opts)


def media_type(value: str | None) -> str | None:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return value.split(";")[0].strip().lower() if value else None


def differences(webpy: Answer, mini: Answer) -> list[str]:
    """Every way the two answers differ, as readable lines (empty: the same)."""
    out = []
    if webpy.status != mini.status:
        out.append(f"status: web.py {webpy.status!r} webmini {mini.status!r}")
    if webpy.body != mini.body:
        out.append(f"body: web.py {webpy.body[:300]!r} webmini {mini.body[:300]!r}")
    # Content-Type is compared on successful answers with a body: web.py labels
    # its own error texts and empty redirects text/html, webmini text/plain,
    # and webmini always sends one (intended differences, see README).
    if webpy.status.startswith("2") and webpy.body and webpy.header("Content-Type") and \
            media_type(webpy.header("Content-Type")) != media_type(mini.header("Content-Type")):
        out.append(f"content-type: web.py {webpy.header('Content-Type')!r} "
                   f"webmini {mini.header('Content-Type')!r}")
    names = {k.lower() for k, _ in webpy.headers + mini.headers}
    # Allow is not compared: web.py lists every method it knows, webmini the
    # handler's own (an intended difference).
    # X-Request-ID is webmini's per-request id (webmini.logs); web.py has none.
    for name in sorted(n for n in names if (n.startswith("x-") and n not in (
                       "x-content-type-options", "x-request-id")) or n == "location"):
        a, b = webpy.all(name), mini.all(name)
        if name == "location":
            # webmini sends relative Locations (a forged Host cannot move them):
            # both are compared as the URL a browser would follow.
            a = [urljoin(REQUEST_BASE, v) for v in a]
            b = [urljoin(REQUEST_BASE, v) for v in b]
        if a != b:
            out.append(f"{name}: web.py {a!r} webmini {b!r}")
    # webmini stores a new session, and sends its cookie, only once the app
    # wrote to it (web.py: on every request; an intended difference): a
    # session cookie (a 40-hex-digit id) web.py set where webmini set none of
    # that name is not compared; the next answers show whether the session held.
    sent = {c.split("=", 1)[0] for c in mini.all("Set-Cookie")}
    sa = sorted(cookie_shape(c, set()) for c in webpy.all("Set-Cookie")
                if c.split("=", 1)[0] in sent
                or not re.match(r"[^=]+=[0-9a-f]{40}(;|$)", c))
    sb = sorted(cookie_shape(c, set()) for c in mini.all("Set-Cookie"))
    if sa != sb:
        out.append(f"set-cookie: web.py {webpy.all('Set-Cookie')!r} webmini {mini.all('Set-Cookie')!r}")
    return out


class Pair:
    """The same app on both frameworks; :meth:`same` sends a request to both and compares."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.sides = {f: Side(f, load_app(name, f, tmp_path / f)) for f in FLAVOURS}

    @property
    def webpy(self) -> Side:
        """The web.py 0.76 side."""
        return self.sides["webpy"]

    @property
    def webmini(self) -> Side:
        """The webmini side."""
        return self.sides["webmini"]

    def both(self, method: str, path: str, **kw: Any) -> tuple[Answer, Answer]:
        """Send the request to both sides; return (web.py's answer, webmini's)."""
        return self.webpy.call(method, path, **kw), self.webmini.call(method, path, **kw)

    def same(self, method: str, path: str, **kw: Any) -> Answer:
        """Send to both; assert the answers match; return webmini's."""
        a, b = self.both(method, path, **kw)
        diff = differences(a, b)
        assert not diff, f"{method} {path}:\n  " + "\n  ".join(diff)
        return b
