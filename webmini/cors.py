"""CORS as a processor: ``app.add_processor(CORS(origins=["https://app.example"]))``.

Preflight requests (``OPTIONS`` with ``Access-Control-Request-Method``) from
an allowed origin are answered here with 204 and the ``Access-Control-*``
headers, without calling the handler. Other requests from an allowed
origin get ``Access-Control-Allow-Origin`` (and the rest) before the
handler runs; they stay on error responses, a 500 included. Requests from
other origins get no CORS headers, so the browser blocks the response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from webmini.ctx import current
from webmini.response import header, set_status

__all__ = ["CORS"]

_SIMPLE_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})


class CORS:
    """A processor answering preflights and tagging responses for allowed origins."""

    def __init__(
        self,
        origins: Iterable[str] | str = (),
        *,
        methods: Iterable[str] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"),
        headers: Iterable[str] = ("Content-Type", "Authorization", "X-Request-ID"),
        expose: Iterable[str] = ("X-Request-ID",),
        credentials: bool = False,
        max_age: int = 600,
    ) -> None:
        self.origins = frozenset([origins] if isinstance(origins, str) else origins)
        self.any_origin = "*" in self.origins
        if self.any_origin and credentials:
            # SECURITY: credentials for every origin would let any site act as
            # the logged-in user; list the origins instead.
            raise ValueError("CORS: credentials=True needs explicit origins, not '*'")
        self.methods = [m.upper() for m in methods]
        self.allow_headers = [h for h in headers]
        self._allowed_lower = frozenset(h.lower() for h in self.allow_headers) | _SIMPLE_HEADERS
        self.expose = ", ".join(expose)
        self.credentials = credentials
        self.max_age = int(max_age)

    def allowed(self, origin: str) -> bool:
        """True if requests from ``origin`` may read responses."""
        # SECURITY: exact matches only, never a prefix or suffix match
        # (https://app.example.evil.net must not pass for https://app.example).
        return self.any_origin or origin in self.origins

    def __call__(self, handler: Callable[[], Any]) -> Any:
        """Process one request (the processor protocol)."""
        c = current()
        env = c.env
        origin = env.get("HTTP_ORIGIN")
        if not self.any_origin:
            header("Vary", "Origin")
        if origin is None or not self.allowed(origin):
            return handler()
        request_method = env.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        if c.method == "OPTIONS" and request_method is not None:
            return self._preflight(origin, request_method, handler)
        self._allow_origin(origin)
        if self.expose:
            header("Access-Control-Expose-Headers", self.expose)
        return handler()

    def _allow_origin(self, origin: str) -> None:
        header("Access-Control-Allow-Origin", "*" if self.any_origin else origin)
        if self.credentials:
            header("Access-Control-Allow-Credentials", "true")

    def _preflight(self, origin: str, method: str, handler: Callable[[], Any]) -> Any:
        env = current().env
        asked = [h.strip() for h in env.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").split(",")
                 if h.strip()]
        if method.upper() not in self.methods or any(
            h.lower() not in self._allowed_lower for h in asked
        ):
            return handler()  # not allowed: a plain OPTIONS answer, no CORS headers
        self._allow_origin(origin)
        header("Access-Control-Allow-Methods", ", ".join(self.methods))
        if asked:
            header("Access-Control-Allow-Headers", ", ".join(asked))
        header("Access-Control-Max-Age", str(self.max_age))
        set_status(204)
        return b""
