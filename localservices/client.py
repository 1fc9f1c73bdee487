"""A minimal HTTP client for the runners and their users: one request, one new connection."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any


class Reply:
    """One HTTP response: ``status`` (int), ``headers`` (lower-case names), ``body``."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def http_get(
    port: int,
    path: str = "/",
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Reply:
    """Send one request to ``127.0.0.1:port`` over a new connection; return the reply.

    Cooperative under gevent (the suite patches ``socket``), so many of these
    can run at once in greenlets.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()
