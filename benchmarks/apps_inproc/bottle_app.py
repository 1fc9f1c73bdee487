"""The benchmark API in Bottle: ``@app.route`` callbacks on a Bottle instance."""

from __future__ import annotations

from typing import Any

from bottle import Bottle, request

from .common import FILLERS, INDEX_BODY, JSON_DOC, filler_body, search_body, user_post_body


def make_app() -> Any:
    """Return the Bottle app (a WSGI callable)."""
    app = Bottle()
    route = app.route

    def filler(n: int) -> str:
        return filler_body(n)

    for i in range(FILLERS):
        route(f"/filler{i}/<n:int>")(filler)

    @route("/")
    def index() -> str:
        return INDEX_BODY

    @route("/search")
    def search() -> str:
        query = request.query
        return search_body(query.q, int(query.page), query.lang)

    @route("/json")
    def json_doc() -> dict[str, Any]:
        return JSON_DOC

    @route("/users/<uid:int>/posts/<pid:int>")
    def user_post(uid: int, pid: int) -> str:
        return user_post_body(uid, pid)

    return app
