"""In-process testing: a WSGI test client and a browser that keeps cookies."""

from __future__ import annotations

import io
import json as _json
import mimetypes
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, TypeAlias
from urllib.parse import urlencode, urlsplit
from wsgiref.validate import validator

from webmini.storage import Storage


def build_environ(
    localpart: str = "/",
    method: str = "GET",
    data: Any = None,
    host: str = "0.0.0.0:8080",
    headers: dict[str, str] | None = None,
    https: bool = False,
    env: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a PEP 3333 environ for ``method localpart`` with ``data`` as body."""
    parts = urlsplit(localpart)
    path = parts.path or "/"
    server_name, _, server_port = host.partition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,  # as given: a lowercase "get" is not GET (405, as in web.py)
        "SCRIPT_NAME": "",
        # PEP 3333: PATH_INFO carries the raw bytes as latin-1 code points.
        "PATH_INFO": _to_wsgi_str(path),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": server_name or "localhost",
        "SERVER_PORT": server_port or ("443" if https else "80"),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": host,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if https else "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    body = b""
    if isinstance(data, dict):
        body = urlencode(data, doseq=True).encode()
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    elif isinstance(data, str):
        body = data.encode("utf-8")
    elif isinstance(data, (bytes, bytearray)):
        body = bytes(data)
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    if body or method.upper() in ("POST", "PUT", "PATCH"):
        environ.setdefault("CONTENT_LENGTH", str(len(body)))
    environ["wsgi.input"] = io.BytesIO(body)
    if env:
        environ.update(env)
    return environ


def _to_wsgi_str(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def _run_app(
    app: Callable[..., Iterable[bytes]], environ: dict[str, Any]
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call a WSGI app once; return its status, header items and whole body (closed)."""
    captured: dict[str, Any] = {}

    def start_response(status: str, items: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["items"] = status, items
        return lambda chunk: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["items"], body


def call_app(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Storage:
    """Call a WSGI app; return web.py's response Storage (status, headers, data)."""
    status, items, data = _run_app(app, environ)
    return Storage(status=status, header_items=items, headers=dict(items), data=data)


class Response:
    """A response captured by :class:`TestClient`."""

    def __init__(self, status: str, header_items: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.status_code = int(status[:3])
        self.header_items = header_items
        self.headers = Headers(header_items)
        self.body = body

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:60]!r}>"


class Headers(Mapping[str, str]):
    """Response headers: a read-only, case-insensitive mapping (first value per name).

    ``headers["content-type"]``, ``dict(headers)``, ``headers.items()``;
    repeated headers (``Set-Cookie``) with :meth:`get_all`.
    """

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._first: dict[str, tuple[str, str]] = {}
        for key, value in items:
            self._first.setdefault(key.lower(), (key, value))

    def get_all(self, name: str) -> list[str]:
        """Return every header called ``name`` (any case), in order."""
        lower = name.lower()
        return [v for k, v in self._items if k.lower() == lower]

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._first.values())

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


_Headers = Headers  # the name before it was public

# A file for ``files=``: its content, (filename, content) or
# (filename, content, content type); content is bytes, str or a binary file.
FileSpec: TypeAlias = bytes | str | IO[bytes] | tuple[str, Any] | tuple[str, Any, str]


def encode_multipart(
    fields: Mapping[str, Any] | None, files: Mapping[str, FileSpec]
) -> tuple[bytes, str]:
    """Encode form ``fields`` and ``files`` as multipart/form-data; return (body, content type)."""
    boundary = "webmini-" + secrets.token_hex(12)
    out = io.BytesIO()

    def part(disposition: str, content: bytes, content_type: str | None = None) -> None:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n".encode())
        if content_type:
            out.write(f"Content-Type: {content_type}\r\n".encode())
        out.write(b"\r\n" + content + b"\r\n")

    for name, value in (fields or {}).items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            part(f'name="{_quote(name)}"', str(item).encode("utf-8"))
    for name, spec in files.items():
        filename, content, content_type = _file_parts(name, spec)
        part(f'name="{_quote(name)}"; filename="{_quote(filename)}"', content, content_type)
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _quote(value: str) -> str:
    # As browsers do (WHATWG HTML): quotes and line breaks percent-encoded.
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _file_parts(name: str, spec: Any) -> tuple[str, bytes, str]:
    content_type = None
    if isinstance(spec, tuple):
        filename, content = spec[0], spec[1]
        if len(spec) > 2:
            content_type = spec[2]
    else:
        filename, content = getattr(spec, "name", None) or name, spec
    if hasattr(content, "read"):
        content = content.read()
    if isinstance(content, str):
        content = content.encode("utf-8")
    filename = str(filename).rsplit("/", 1)[-1]
    if content_type is None:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return filename, bytes(content), content_type


class TestClient:
    """Drive a WSGI application in-process; every exchange is checked by wsgiref.validate."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: Callable[..., Iterable[bytes]], validate: bool = True) -> None:
        if callable(getattr(app, "wsgifunc", None)):
            # An application object serves as its wsgifunc() does: request id, access
            # line (recorded by the application itself, checked per request).
            from webmini.logs import AccessLog, access_line_ids

            if hasattr(app, "_access_ids"):  # webmini's application
                app._access_ids = access_line_ids(always=True)  # type: ignore[attr-defined]
                app = app.__call__  # type: ignore[attr-defined,operator]
            else:
                app = AccessLog(app)
        self.app = validator(app) if validate else app

    def request(
        self,
        method: str,
        path: str,
        data: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        https: bool = False,
        env: dict[str, Any] | None = None,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        files: Mapping[str, FileSpec] | None = None,
    ) -> Response:
        """Send one request and return the full :class:`Response`.

        ``params`` go to the query string (lists repeat the key), ``data`` (a
        dict: a form; str or bytes: the body), ``json`` (serialised, with its
        Content-Type), ``files`` (with ``data`` as the other fields: a
        multipart/form-data body).
        """
        headers = self._outgoing_headers(dict(headers or {}))
        if params:
            query = urlencode(params if isinstance(params, Mapping) else list(params), doseq=True)
            path = path + ("&" if "?" in path else "?") + query
        if json is not None:
            data = _json.dumps(json)
            headers.setdefault("Content-Type", "application/json")
        elif files:
            if data is not None and not isinstance(data, Mapping):
                raise TypeError("with files=, data must be a dict of form fields")
            data, content_type = encode_multipart(data, files)
            headers["Content-Type"] = content_type
        environ = build_environ(path, method, data, "localhost:8080", headers, https, env)
        response = Response(*_run_app(self.app, environ))
        from webmini.logs import flush

        flush()  # the access line is written now, not in the next batch: tests look at it
        self._received(response)
        return response

    def _outgoing_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """Hook: adjust the headers of every request (the Browser adds cookies)."""
        return headers

    def _received(self, response: Response) -> None:
        """Hook: look at every response (the Browser stores cookies)."""

    def get(self, path: str, **kw: Any) -> Response:
        """Send a GET."""
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw: Any) -> Response:
        """Send a HEAD."""
        return self.request("HEAD", path, **kw)

    def post(self, path: str, data: Any = None, **kw: Any) -> Response:
        """Send a POST."""
        return self.request("POST", path, data=data, **kw)

    def put(self, path: str, data: Any = None, **kw: Any) -> Response:
        """Send a PUT."""
        return self.request("PUT", path, data=data, **kw)

    def patch(self, path: str, data: Any = None, **kw: Any) -> Response:
        """Send a PATCH."""
        return self.request("PATCH", path, data=data, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        """Send a DELETE."""
        return self.request("DELETE", path, **kw)

    def options(self, path: str, **kw: Any) -> Response:
        """Send an OPTIONS."""
        return self.request("OPTIONS", path, **kw)


class Browser(TestClient):
    """A test client that stores cookies from responses and sends them back."""

    def __init__(self, app: Callable[..., Iterable[bytes]], validate: bool = True) -> None:
        super().__init__(app, validate)
        self.cookies: dict[str, str] = {}

    def _outgoing_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """Send the stored cookies, unless the caller set a Cookie header."""
        if self.cookies and "Cookie" not in headers:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _received(self, response: Response) -> None:
        """Store the cookies the response sets (and drop the expired ones)."""
        for cookie in response.headers.get_all("Set-Cookie"):
            self._store(cookie)

    def _store(self, set_cookie: str) -> None:
        first, *attrs = [p.strip() for p in set_cookie.split(";")]
        name, _, value = first.partition("=")
        expired = any(
            a.lower().startswith("max-age=") and a[8:].strip().lstrip("-").isdigit()
            and int(a[8:]) <= 0
            for a in attrs
        ) or any(a.lower() == "expires=thu, 01 jan 1970 00:00:00 gmt" for a in attrs)
        if expired:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value
