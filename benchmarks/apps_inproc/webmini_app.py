"""The benchmark API in webmini: web.py's URL table and handler classes."""

from __future__ import annotations

from typing import Any

import webmini as web

from .common import INDEX_BODY, JSON_DOC, URLS, filler_body, search_body, user_post_body


class Filler:
    """A filler route."""

    def GET(self, n: str) -> str:
        """Answer a filler route."""
        return filler_body(int(n))


class Index:
    """The static index."""

    def GET(self) -> str:
        """Answer ``/``."""
        return INDEX_BODY


class Search:
    """Query-string parsing."""

    def GET(self) -> str:
        """Answer ``/search`` from q, page (int) and lang."""
        i = web.input()
        return search_body(i.q, int(i.page), i.lang)


class Json:
    """A small JSON document."""

    def GET(self) -> dict[str, Any]:
        """Answer ``/json``: a returned dict is sent as JSON."""
        return JSON_DOC


class UserPost:
    """Two path parameters, last row of the table."""

    def GET(self, uid: str, pid: str) -> str:
        """Answer ``/users/<uid>/posts/<pid>``."""
        return user_post_body(int(uid), int(pid))


def make_app() -> Any:
    """Return the webmini app's WSGI callable."""
    # No access line and no request id: the peers' apps write none either
    # (their servers log). webmini's own costs 4 us per request plus the
    # line itself; see benchmarks/README.md.
    web.config.access_log = False
    return web.application(URLS, globals()).wsgifunc()
