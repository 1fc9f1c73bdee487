"""Turning a handler's result into a response body: the one place results are sorted.

What a handler (or a processor, or an ``internalerror`` hook) may return:

========================================  =========================================
result                                    response
========================================  =========================================
``str``                                   UTF-8 text, the default Content-Type
``bytes``, ``bytearray``, ``memoryview``  sent as they are
``dict``, ``list`` (and subclasses)       compact UTF-8 JSON, ``application/json``
``None``                                  an empty body
an object with ``__html__()``             its HTML (templates, ``markupsafe.Markup``),
                                          ``text/html; charset=utf-8``
a file object (has ``read``)              ``wsgi.file_wrapper``, with Content-Length
a generator / iterator / other iterable   streamed; each chunk ``str`` or bytes-like
an :class:`~webmini.errors.HTTPError`     that error's response, as if raised
``(body, status)``,                       ``body`` as above, with that status
``(body, status, headers)``               (``201`` or ``"201 Created"``) and headers
========================================  =========================================

Anything else (an ``int``, an arbitrary object, a chunk that is neither text
nor bytes) is a ``TypeError`` naming the handler: a logged 500, never a
garbled 200. :func:`kind` is the classifier; the application, ``unloadhook``
and the streaming body all ask it.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator, MappingView
from typing import Any

from webmini.ctx import RequestContext, bind, unbind
from webmini.errors import HTTPError
from webmini.headers import as_status, check_header, header_list

# What kind() answers.
TEXT, BYTES, JSON, EMPTY, HTML, FILE, STREAM, ERROR, TUPLE, UNSUPPORTED = range(10)

HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"
FILE_TYPE = "application/octet-stream"
CHUNK_SIZE = 64 * 1024

_BYTES_LIKE = (bytes, bytearray, memoryview)
_EXPECTED = (
    "str, bytes-like, dict/list (JSON), None, an object with __html__(), a file, "
    "an iterable of str/bytes chunks, an HTTPError, or (body, status[, headers])"
)


_UNORDERED = (set, frozenset, MappingView)


def kind(result: Any) -> int:
    """Classify a handler's result: one of the module's kind constants."""
    # PERF: the common results are tested by exact type first.
    t = type(result)
    if t is str:
        return TEXT
    if t is bytes:
        return BYTES
    if t is dict or t is list:
        return JSON
    if result is None:
        return EMPTY
    if isinstance(result, HTTPError):
        return ERROR
    # Before dict and str: a template result may be a dict subclass, and
    # markupsafe.Markup is a str subclass; both ask to be sent as HTML.
    if hasattr(result, "__html__"):
        return HTML
    if isinstance(result, str):
        return TEXT
    if isinstance(result, _BYTES_LIKE):
        return BYTES
    if isinstance(result, (dict, list)):  # Storage rows, OrderedDict...
        return JSON
    if isinstance(result, tuple):
        return TUPLE
    if hasattr(result, "read"):
        return FILE
    if isinstance(result, _UNORDERED):
        # A set or a dict view has no order (and a set of str is no body):
        # refused like any other value webmini cannot send, not streamed.
        return UNSUPPORTED
    if hasattr(result, "__iter__"):
        return STREAM
    return UNSUPPORTED


def unsupported(where: str, value: Any, what: str = "returned") -> TypeError:
    """The TypeError for a result webmini cannot send; ``where`` names the handler."""
    return TypeError(f"{where} {what} {type(value).__name__!s}: expected {_EXPECTED}")


def split_tuple(result: tuple[Any, ...]) -> tuple[Any, str, list[tuple[str, str]]]:
    """Return ``(body, status line, headers)`` from ``(body, status[, headers])``.

    Raises TypeError or ValueError for any other shape, a bad status or an
    unsafe header.
    """
    if len(result) == 2:
        body, status = result
        headers: list[tuple[str, str]] = []
    elif len(result) == 3:
        body, status, raw = result
        if not isinstance(raw, (dict, list)):
            raise TypeError("the headers in (body, status, headers) must be a dict or a list")
        headers = header_list(raw)
    else:
        n = len(result)
        raise TypeError(f"a tuple result must be (body, status[, headers]), not {n} items")
    if isinstance(body, tuple):
        raise TypeError("the body in (body, status[, headers]) cannot be a tuple")
    line = as_status(status)
    for name, value in headers:
        check_header(name, value)
    return body, line, headers


def is_stream(result: Any) -> bool:
    """True when ``result`` is (or a status tuple carries) a body sent while iterated."""
    k = kind(result)
    if k == TUPLE and 2 <= len(result) <= 3:
        return kind(result[0]) == STREAM
    return k == STREAM


def run_after(result: Any, hook: Callable[[], Any]) -> Any:
    """Return the stream ``result`` (maybe in a status tuple) with ``hook()`` run after it."""
    if isinstance(result, tuple):
        return (_run_after(result[0], hook), *result[1:])
    return _run_after(result, hook)


def _run_after(stream: Any, hook: Callable[[], Any]) -> Iterator[Any]:
    try:
        yield from stream
    finally:
        hook()


def encode_chunk(chunk: Any) -> bytes:
    """Return one streamed chunk as bytes; TypeError unless it is text or bytes-like."""
    if type(chunk) is bytes:
        return chunk
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, _BYTES_LIKE):
        return bytes(chunk)
    raise TypeError(f"streamed chunk of type {type(chunk).__name__}: expected str or bytes-like")


def html_bytes(result: Any) -> bytes:
    """Return an ``__html__()`` object's markup as UTF-8 bytes."""
    markup = result.__html__()
    if isinstance(markup, bytes):
        return markup
    return str(markup).encode("utf-8")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


# PERF: one encoder built once; ensure_ascii=False keeps UTF-8 bodies short.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)


def json_bytes(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON (datetimes, decimals and UUIDs as strings)."""
    return _encoder.encode(obj).encode("utf-8")


def remaining_size(f: Any) -> int | None:
    """Bytes left to read in file ``f``, or None when it cannot tell."""
    try:
        size = os.fstat(f.fileno()).st_size
        return int(size - f.tell())
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        return None


def close(iterator: Any) -> None:
    """Call ``iterator.close()`` when it has one."""
    method = getattr(iterator, "close", None)
    if method is not None:
        method()


class FileIterator:
    """Iterate a file in chunks when the server offers no ``wsgi.file_wrapper``."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk: bytes = self.f.read(CHUNK_SIZE)
        if not chunk:
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Close the file."""
        self.f.close()


class StreamingBody:
    """A streamed response body that runs the generator inside its request context.

    ``failed(c)`` reports an exception raised (or a bad chunk yielded) once the
    status line is sent; the exception then propagates so the server aborts
    the connection, the only honest signal left that the body is incomplete.
    """

    def __init__(
        self,
        c: RequestContext,
        first: bytes,
        rest: Any,
        failed: Callable[[RequestContext], None],
        where: Callable[[RequestContext], str],
    ) -> None:
        self.c = c
        self.first: bytes | None = first
        self.rest = rest
        self.failed = failed
        self.where = where

    def __iter__(self) -> StreamingBody:
        return self

    def __next__(self) -> bytes:
        first = self.first
        if first is not None:
            self.first = None
            return first
        token = bind(self.c)
        try:
            chunk = next(self.rest)
            if type(chunk) is bytes:
                return chunk
            try:
                return encode_chunk(chunk)
            except TypeError as e:
                raise TypeError(f"{self.where(self.c)} yielded a bad chunk: {e}") from None
        except StopIteration:
            raise
        except Exception:
            self.failed(self.c)
            raise
        finally:
            unbind(token)

    def close(self) -> None:
        """Close the underlying generator (runs its ``finally`` blocks)."""
        token = bind(self.c)
        try:
            close(self.rest)
        finally:
            unbind(token)
