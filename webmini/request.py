"""Request data: query, forms, uploads, raw body, JSON and cookies.

Everything is parsed lazily, on first use, and kept on the request context.
Limits come from ``webmini.config``; bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import io
import json as _json
from types import GeneratorType
from typing import Any
from urllib.parse import parse_qs, unquote

from webmini.config import config
from webmini.ctx import UNSET, RequestContext, current, current_or_none
from webmini.errors import BadRequest, HTTPError, PayloadTooLarge, UnsupportedMediaType
from webmini.hosts import PASSED, check_host
from webmini.storage import Storage

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


class FileUpload:
    """A file part of a multipart body: ``filename``, ``type``, ``file`` and ``value``."""

    def __init__(self, name: str, filename: str, content_type: str, file: Any) -> None:
        self.name = name
        self.filename = filename
        self.type = content_type
        self.file = file

    @property
    def value(self) -> bytes:
        """The whole content of the upload, as bytes."""
        self.file.seek(0)
        data: bytes = self.file.read()
        self.file.seek(0)
        return data

    def __repr__(self) -> str:
        return f"<FileUpload {self.name!r} filename={self.filename!r} type={self.type!r}>"


def _to_utf8(text: str, what: str) -> str:
    """Re-decode a PEP 3333 latin-1 string as UTF-8, or answer 400."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise BadRequest(f"{what} is not valid UTF-8") from None


Fields = tuple[dict[str, Any], dict[str, list[Any]]]
"""Parsed fields: the last value of each name, and every value of repeated names."""

_NO_FIELDS: Fields = ({}, {})


def _fields_from_lists(lists: dict[str, list[Any]]) -> Fields:
    last = {k: v[-1] for k, v in lists.items() if v}
    multi = {k: v for k, v in lists.items() if len(v) > 1}
    return last, multi


def parse_query(qs: str) -> Fields:
    """Parse a query string into :data:`Fields`, enforcing the field limit."""
    if not qs:
        return _NO_FIELDS
    limit = config["max_form_fields"]
    # PERF: most API query strings are plain ASCII with nothing escaped;
    # splitting them by hand is several times faster than parse_qs.
    if "%" not in qs and "+" not in qs and qs.isascii():
        pairs = qs.split("&")
        if len(pairs) > limit:
            raise PayloadTooLarge(f"more than {limit} form fields")
        last: dict[str, Any] = {}
        multi: dict[str, list[Any]] = {}
        for pair in pairs:
            if not pair:
                continue
            key, _, value = pair.partition("=")
            if key in last:
                if key in multi:
                    multi[key].append(value)
                else:
                    multi[key] = [last[key], value]
            last[key] = value
        return last, multi
    try:
        lists = parse_qs(
            qs,
            keep_blank_values=True,
            max_num_fields=limit,
            encoding="utf-8",
            errors="strict",
        )
    except UnicodeDecodeError:
        raise BadRequest("form data is not valid UTF-8") from None
    except ValueError:
        raise PayloadTooLarge(f"more than {limit} form fields") from None
    return _fields_from_lists(lists)


def _content_length(env: dict[str, Any]) -> int | None:
    text = env.get("CONTENT_LENGTH")
    if not text:
        return None
    try:
        length = int(text)
    except ValueError:
        raise BadRequest("invalid Content-Length") from None
    if length < 0:
        raise BadRequest("invalid Content-Length")
    return length


def _read_stream(stream: Any, size: int = -1) -> bytes:
    """Read the body; a malformed one (a bad chunk, a cut connection) is the client's 400."""
    try:
        chunk: bytes = stream.read(size)
    except Exception as exc:  # noqa: BLE001 - only the server's body reader runs here
        # Servers signal a malformed body in their own ways: pywsgi and uWSGI
        # raise OSError/ValueError, gunicorn its own ParseException classes.
        raise BadRequest(f"malformed request body: {exc}") from None
    return chunk


class _ClientBody:
    """``wsgi.input`` for a parser: a read error of the server's is a 400."""

    __slots__ = ("stream",)

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all when negative)."""
        return _read_stream(self.stream, size)


#: Most bytes of a refused body read and dropped (or max_body_size, if larger).
DRAIN_LIMIT = 16 * 1024 * 1024


def _drain(stream: Any, length: int | None) -> None:
    """Read and drop what is left of a body refused early (bounded: DRAIN_LIMIT).

    uWSGI closes a connection with unread request data: the kernel then
    answers RST and nginx reports 502 instead of webmini's 4xx. Draining the
    rest (at loopback speed: nginx buffered it) lets the 4xx through.
    """
    cap = max(DRAIN_LIMIT, config.max_body_size)
    budget = min(length, cap) if length is not None else cap
    try:
        while budget > 0:
            chunk = stream.read(min(65536, budget))
            if not chunk:
                return
            budget -= len(chunk)
    except Exception:  # noqa: BLE001 - a broken body: the connection closes anyway
        return


def drain_unread_body(environ: dict[str, Any], result: Any) -> None:
    """Under uWSGI, read and drop what the app left unread of a request body.

    uWSGI closes the connection over unread request data, the kernel answers
    RST, and nginx turns the handler's answer into a 502 (a webhook answering
    204 without reading, a redirect after a POST). gunicorn and the dev server
    skip unread bodies themselves. Bounded like a refused body (DRAIN_LIMIT);
    a streamed result (a generator) may still read, and is left alone.
    """
    if "uwsgi.version" not in environ or type(result) is GeneratorType:
        return
    try:
        length = _content_length(environ)
    except BadRequest:
        return  # the request was answered 400 already, if the app read it
    if length:
        _drain(environ["wsgi.input"], length)


def _read_body(c: RequestContext) -> bytes:
    env = c.env
    limit = config.max_body_size
    length = _content_length(env)
    stream = env["wsgi.input"]
    if length is None:
        if not env.get("wsgi.input_terminated"):
            return b""
        # The server de-chunked the body: read up to the limit and no further.
        body = _read_stream(stream, limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"request body larger than {limit} bytes")
        return bytes(body)
    if length > limit:
        _drain(stream, length)
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    body = _read_stream(stream, length) if length else b""
    if len(body) < length:
        raise BadRequest("request body shorter than its Content-Length")
    return bytes(body)


def data() -> bytes:
    """Return the raw request body (read once, bounded by ``config.max_body_size``)."""
    c = current()
    cached = c.parsed_body
    if cached is None:
        if c.body_streamed:
            raise RuntimeError("the request body was already consumed by input()")
        cached = c.parsed_body = _read_body(c)
    return cached


def json(strict: bool | None = None) -> Any:
    """Return the request body parsed as JSON; an empty or invalid body is a 400.

    ``strict=True`` (default: ``web.config.json_strict``) also answers 415
    when the ``Content-Type`` is not JSON (``application/json``, ``*/*+json``).
    """
    c = current()
    if strict if strict is not None else config.get("json_strict", False):
        media = c.env.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaType("expected a JSON body (Content-Type: application/json)")
    if c.parsed_json is not UNSET:
        return c.parsed_json
    body = data()
    if not body:
        raise BadRequest("a JSON body is required")
    try:
        value = _json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid JSON body") from None
    except RecursionError:
        # SECURITY: nesting deeper than Python's stack: a 400, not a 500.
        raise BadRequest("JSON body nested too deeply") from None
    c.parsed_json = value
    return value


def _parse_multipart(c: RequestContext, ctype: str) -> Fields:
    from multipart import MultipartError, MultipartParser, ParserLimitReached, parse_options_header

    _, options = parse_options_header(ctype)
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("multipart body without a boundary")
    env = c.env
    length = _content_length(env)
    limit = config.max_body_size
    parsed = c.parsed_body
    live = parsed is None
    if length is not None and length > limit:
        if live:
            _drain(env["wsgi.input"], length)
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    if parsed is None:
        stream: Any = _ClientBody(env["wsgi.input"])
        c.body_streamed = True
    else:
        stream = io.BytesIO(parsed)
    out: dict[str, list[Any]] = {}
    try:
        parser = MultipartParser(
            stream,
            boundary,
            content_length=-1 if length is None else length,
            charset="utf8",
            part_limit=config.max_form_fields,
            spool_limit=config.multipart_spool_size,
            memory_limit=config.multipart_memory_limit,
            disk_limit=limit,
        )
        for part in parser:
            if part.filename is not None:
                value: Any = FileUpload(part.name, part.filename, part.content_type, part.file)
            else:
                value = part.value
            out.setdefault(part.name, []).append(value)
    except ParserLimitReached as exc:
        if live:
            _drain(env["wsgi.input"], length)
        raise PayloadTooLarge(f"multipart body over a limit: {exc}") from None
    except (MultipartError, UnicodeDecodeError, ValueError, OSError) as exc:
        if live:
            _drain(env["wsgi.input"], length)
        raise BadRequest(f"malformed multipart body: {exc}") from None
    return _fields_from_lists(out)


def _form(c: RequestContext) -> Fields:
    cached = c.parsed_form
    if cached is not None:
        return cached
    env = c.env
    form = _NO_FIELDS
    if c.method not in _NO_BODY_METHODS:
        ctype = env.get("CONTENT_TYPE", "")
        lower = ctype.lower()
        if lower.startswith("multipart/form-data"):
            form = _parse_multipart(c, ctype)
        elif not lower or lower.startswith("application/x-www-form-urlencoded"):
            body = data()
            if body:
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadRequest("form data is not valid UTF-8") from None
                form = parse_query(text)
    c.parsed_form = form
    return form


def _query(c: RequestContext) -> Fields:
    cached = c.parsed_query
    if cached is None:
        qs = c.env.get("QUERY_STRING")
        if qs and not qs.isascii():
            qs = _to_utf8(qs, "the query string")
        cached = c.parsed_query = parse_query(qs) if qs else _NO_FIELDS
    return cached


def _upload_value(value: Any, default: Any) -> Any:
    # web.py: an upload is given as its bytes unless its default is a dict.
    if isinstance(value, FileUpload) and not isinstance(default, dict):
        return value.value
    return value


def input(*requireds: str, _method: str = "both", **defaults: Any) -> Storage:  # noqa: A001
    """Return query and form fields as a Storage, web.py style.

    ``requireds`` must be present (400 otherwise); a list default keeps every
    value of a repeated field; ``{}`` as default keeps an upload as a
    :class:`FileUpload`. ``_method`` is ``"get"``, ``"post"`` or ``"both"``.
    """
    c = current_or_none()
    if c is None:
        c = current()  # raises the explanatory RuntimeError
    if not defaults and not requireds and c.method == "GET" and _method == "both":
        # PERF: the common API case, plain query fields, is one dict copy.
        return Storage(_query(c)[0])
    if _method == "both":
        last, multi = _query(c)
        if c.method not in _NO_BODY_METHODS:
            form_last, form_multi = _form(c)
            if form_last:
                # Form fields replace query fields of the same name (web.py).
                last = {**last, **form_last}
                multi = {k: v for k, v in multi.items() if k not in form_last}
                multi.update(form_multi)
    elif _method.lower() == "get":
        last, multi = _query(c)
    else:
        last, multi = _form(c)
    # PERF: the result is built with C-level dict operations; only list
    # defaults and uploads need a look at single fields.
    result = Storage(last)
    for key, default in defaults.items():
        if isinstance(default, (list, tuple)):
            if key in multi:
                result[key] = [_upload_value(v, default) for v in multi[key]]
            elif key in last:
                result[key] = [_upload_value(last[key], default)]
            else:
                result[key] = list(default)
        elif key not in result:
            result[key] = default
    if c.parsed_form and any(isinstance(v, FileUpload) for v in last.values()):
        for key, value in last.items():
            if not isinstance(defaults.get(key), (list, tuple)):
                result[key] = _upload_value(value, defaults.get(key))
    for key in requireds:
        if key not in result:
            raise BadRequest(f"missing required field {key!r}")
    return result


def cookies(*requireds: str, **defaults: Any) -> Storage:
    """Return the request's cookies as a Storage; missing required ones are a 400."""
    c = current()
    parsed = c.parsed_cookies
    if parsed is None:
        parsed = c.parsed_cookies = _parse_cookie_header(c.env.get("HTTP_COOKIE", ""))
    result = Storage(defaults)
    result.update(parsed)
    for key in requireds:
        if key not in result:
            raise BadRequest(f"missing required cookie {key!r}")
    return result


def _parse_cookie_header(text: str) -> dict[str, str]:
    # Lenient like browsers: one bad pair never hides the others (SimpleCookie
    # drops every cookie after an unexpected character).
    out: dict[str, str] = {}
    if not text:
        return out
    for chunk in text.split(";"):
        name, sep, value = chunk.strip().partition("=")
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        # SECURITY: a cookie that is not UTF-8 is skipped, as browsers and
        # Werkzeug do: never a 400 that would echo it (another site on the
        # domain can plant cookies), never the end of the other cookies.
        try:
            if not chunk.isascii():
                name = name.encode("latin-1").decode("utf-8")
                value = value.encode("latin-1").decode("utf-8")
            out.setdefault(name.strip(), unquote(value, errors="strict"))
        except UnicodeError:
            continue
    return out


def getheader(name: str, default: str | None = None) -> str | None:
    """Return request header ``name`` (any case), or ``default``."""
    env = current().env
    key = name.upper().replace("-", "_")
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return env.get(key, default)
    return env.get("HTTP_" + key, default)


def decode_path(path: str) -> str:
    """Return PATH_INFO decoded as UTF-8, or raise 400."""
    return _to_utf8(path, "the request path")


def screen(environ: dict[str, Any]) -> str:
    """The request's path (PATH_INFO decoded) once its length and Host pass; else a 4xx.

    Run once per request before routing: a path longer than
    ``config.max_path_length`` is a 414, a path that is not UTF-8 or a
    ``Host`` that :func:`webmini.hosts.check_host` refuses a 400.
    """
    path: str = environ.get("PATH_INFO") or "/"
    # SECURITY: route regexes run on the path in the event loop, where no
    # timeout can stop them: a long path never reaches one (a bound, not a
    # cure, for a pattern that backtracks: `webmini check` names those).
    if len(path) > config["max_path_length"]:
        raise HTTPError("414 URI Too Long", None, "URI too long")
    if not path.isascii():
        path = decode_path(path)
    # PERF: a Host that already passed under this very allowed_hosts object:
    # one dict lookup, no call (webmini.hosts.PASSED).
    if PASSED.get(environ.get("HTTP_HOST")) is not config["allowed_hosts"] \
            or "HTTP_X_FORWARDED_HOST" in environ:
        refused = check_host(environ)
        if refused is not None:
            raise BadRequest(refused)
    return path
