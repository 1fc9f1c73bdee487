"""A minimal HTTP client for the runners and their users: one request, one new connection.

- :func:`http_get`: any request; a connection that fails raises.
- :func:`call_json`: a JSON API call that never raises for a lost connection
  (the clients of the fault tests and benchmarks count those and go on).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any, NamedTuple


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


class JsonReply(NamedTuple):
    """One :func:`call_json` outcome; ``status`` 0 and a ``failure`` when no HTTP answer came."""

    status: int
    #: the body parsed as JSON; None when empty, the raw bytes when not JSON
    data: Any
    #: the ``name=value`` of the answer's Set-Cookie, "" without one
    cookie: str
    #: the answer's headers, names in lower case
    headers: dict[str, str]
    #: "" when answered, else "refused", "timeout", "reset" or "malformed" (not HTTP)
    failure: str = ""

    @property
    def outcome(self) -> str:
        """The status as text ("200"), or the failure ("refused") when there was no answer."""
        return self.failure or str(self.status)


def call_json(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    cookie: str = "",
    timeout: float = 15.0,
) -> JsonReply:
    """Send ``body`` as JSON to ``127.0.0.1:port`` over a new connection, with ``cookie``.

    A connection refused, timed out or reset, or an answer that is not HTTP,
    is returned as status 0 with its ``failure`` named, never raised: the
    callers (clients looping while servers restart) count it and try again.
    """
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    data = None if body is None else json.dumps(body).encode()
    try:
        reply = http_get(port, path, timeout, headers, method, data)
    except ConnectionRefusedError:
        return JsonReply(0, None, "", {}, "refused")
    except TimeoutError:
        return JsonReply(0, None, "", {}, "timeout")
    except OSError:
        return JsonReply(0, None, "", {}, "reset")
    except http.client.HTTPException:
        return JsonReply(0, None, "", {}, "malformed")
    try:
        parsed = reply.json() if reply.body else None
    except ValueError:
        parsed = reply.body
    set_cookie = reply.headers.get("set-cookie", "").split(";", 1)[0]
    return JsonReply(reply.status, parsed, set_cookie, reply.headers)
