"""The benchmark API in web.py 0.76: URL table and handler classes."""

from __future__ import annotations

import json
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import web

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

    def GET(self) -> str:
        """Answer ``/json``: web.py has no JSON response, so set the type and dump."""
        web.header("Content-Type", "application/json")
        return json.dumps(JSON_DOC)


class UserPost:
    """Two path parameters, last row of the table."""

    def GET(self, uid: str, pid: str) -> str:
        """Answer ``/users/<uid>/posts/<pid>``."""
        return user_post_body(int(uid), int(pid))


def make_app() -> Any:
    """Return the web.py app's WSGI callable (debug off: no reloader, no debug pages)."""
    web.config.debug = False
    return web.application(URLS, globals(), autoreload=False).wsgifunc()
