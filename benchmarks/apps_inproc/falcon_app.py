"""The benchmark API in Falcon: resource classes and ``add_route`` templates."""

from __future__ import annotations

from typing import Any

import falcon

from .common import FILLERS, INDEX_BODY, JSON_DOC, filler_body, search_body, user_post_body


class Filler:
    """A filler route."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, n: int) -> None:
        """Answer a filler route."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = filler_body(n)


class Index:
    """The static index."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer ``/``."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = INDEX_BODY


class Search:
    """Query-string parsing."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer ``/search`` from q, page (int) and lang."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = search_body(
            req.get_param("q", required=True),
            req.get_param_as_int("page", required=True),
            req.get_param("lang", required=True),
        )


class Json:
    """A small JSON document."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer ``/json`` through Falcon's media handling."""
        resp.media = JSON_DOC


class UserPost:
    """Two path parameters."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, uid: int, pid: int) -> None:
        """Answer ``/users/{uid}/posts/{pid}``."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = user_post_body(uid, pid)


def make_app() -> Any:
    """Return the Falcon app (a WSGI callable)."""
    app = falcon.App()
    for i in range(FILLERS):
        app.add_route(f"/filler{i}/{{n:int}}", Filler())
    app.add_route("/", Index())
    app.add_route("/search", Search())
    app.add_route("/json", Json())
    app.add_route("/users/{uid:int}/posts/{pid:int}", UserPost())
    return app
