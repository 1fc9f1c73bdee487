"""Error bodies as RFC 9457 problem details (``application/problem+json``).

``web.config.error_format`` chooses how every ``HTTPError`` with a text body
is rendered, webmini's own (400, 404, 405, 413, 415, 422, 500...) included:

* ``"text"`` (default): the message as ``text/plain``;
* ``"json"``: always problem details;
* ``"auto"``: problem details when the request's ``Accept`` prefers JSON
  (``application/json``, ``application/problem+json``, ``*/*+json``) over
  HTML and plain text, text otherwise.

An application may choose for itself: ``app.error_format = "json"`` (one
format for every error of that app, webmini's own 404, 405, 413, 503...
included), whatever ``web.config.error_format`` says.

``web.config.error_renderer``: your own function ``(error, environ) ->
(content_type, body) or None`` (None: the built-in rendering) replaces it
for text bodies of 4xx and 5xx errors, e.g. to add a ``type`` URI.

An ``HTTPError`` whose body is a dict is sent as JSON as it is; one whose
body is bytes, or that sets its own ``Content-Type``, is left alone; below
400 (redirects, 304) nothing is a problem.
"""

from __future__ import annotations

import json
from typing import Any

from webmini.config import config
from webmini.ctx import current_or_none

__all__ = ["PROBLEM_JSON", "error_format", "problem", "render", "wants_json"]

PROBLEM_JSON = "application/problem+json"
_TEXT = "text/plain; charset=utf-8"


def wants_json(accept: str | None) -> bool:
    """True when an ``Accept`` header ranks a JSON type above HTML and plain text."""
    if not accept:
        return False
    best_json = best_text = 0.0
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in ("application/json", PROBLEM_JSON) or media.endswith("+json"):
            best_json = max(best_json, q)
        elif media in ("text/html", "text/plain", "text/*", "application/xhtml+xml"):
            best_text = max(best_text, q)
    return best_json > 0 and best_json >= best_text


def error_format() -> str:
    """The serving app's ``error_format`` attribute if it has one, else ``web.config``'s."""
    c = current_or_none()
    own = getattr(c.app, "error_format", None) if c is not None else None
    return own or config.get("error_format", "text")


def problem(status: str, detail: Any = None, **members: Any) -> dict[str, Any]:
    """Return a problem-details object for ``status`` (``"404 Not Found"``) and ``detail``."""
    code, _, title = status.partition(" ")
    body: dict[str, Any] = {"type": "about:blank", "title": title or code,
                            "status": int(code) if code.isdigit() else code}
    if detail not in (None, ""):
        body["detail"] = detail
    body.update(members)
    return body


def render(error: Any, environ: dict[str, Any]) -> tuple[str, bytes] | None:
    """Return ``(content type, body)`` for ``error``'s text, or None to leave its body as it is."""
    data = error.data
    if not isinstance(data, str) or any(n.lower() == "content-type" for n, _ in error.headers):
        return None  # bytes, a dict (JSON), HTML, or a type the error set itself
    if int(error.status[:3]) < 400:  # 201, 304, redirects: never a problem
        return _TEXT, data.encode("utf-8")
    custom = config.get("error_renderer")
    if custom is not None:
        rendered = custom(error, environ)
        if rendered is not None:
            return rendered  # type: ignore[no-any-return]
    fmt = error_format()
    if fmt == "json" or (fmt == "auto" and wants_json(environ.get("HTTP_ACCEPT"))):
        default = data == getattr(error, "default_message", None)
        body = problem(error.status, None if default else data)
        return PROBLEM_JSON, json.dumps(body, separators=(",", ":")).encode()
    return _TEXT, data.encode("utf-8")
