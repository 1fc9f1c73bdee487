"""The benchmark API in Flask: ``@app.route`` view functions."""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from .common import FILLERS, INDEX_BODY, JSON_DOC, filler_body, search_body, user_post_body


def make_app() -> Any:
    """Return the Flask app (a WSGI callable)."""
    app = Flask(__name__)

    def filler(n: int) -> str:
        return filler_body(n)

    for i in range(FILLERS):
        app.route(f"/filler{i}/<int:n>", endpoint=f"filler{i}")(filler)

    @app.route("/")
    def index() -> str:
        return INDEX_BODY

    @app.route("/search")
    def search() -> str:
        args = request.args
        return search_body(args["q"], args.get("page", 0, type=int), args["lang"])

    @app.route("/json")
    def json_doc() -> dict[str, Any]:
        return JSON_DOC

    @app.route("/users/<int:uid>/posts/<int:pid>")
    def user_post(uid: int, pid: int) -> str:
        return user_post_body(uid, pid)

    return app
