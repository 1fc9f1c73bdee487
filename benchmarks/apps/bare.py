"""A bare PEP 3333 callable: the floor any framework is measured against."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b"Hello, world!"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer every request with the same greeting as examples/hello.py's ``GET /``."""
    start_response("200 OK", HEADERS)
    return [BODY]
