"""What every benchmark app serves: the URL table, the bodies and the JSON document."""

from __future__ import annotations

from typing import Any

FILLERS = 20
"""Parametric routes placed before the tested ones; none of them matches a tested path."""

# The web.py-style URL table, shared verbatim by the web.py and webmini apps:
# 20 filler regex routes, the static index, the query route, the JSON route,
# and the two-parameter route LAST, so table-order routers try every row.
URLS: tuple[str, ...] = (
    *(item for i in range(FILLERS) for item in (rf"/filler{i}/(\d+)", "Filler")),
    "/", "Index",
    "/search", "Search",
    "/json", "Json",
    r"/users/(\d+)/posts/(\d+)", "UserPost",
)

INDEX_BODY = "Hello, World!"

JSON_DOC: dict[str, Any] = {
    "id": 42,
    "name": "webmini",
    "tags": ["wsgi", "gevent"],
    "active": True,
    "score": 9.5,
}


def filler_body(n: int) -> str:
    """Body of a filler route (never requested by the benchmark)."""
    return f"filler {n}"


def user_post_body(uid: int, pid: int) -> str:
    """Body of ``GET /users/<uid>/posts/<pid>``."""
    return f"user {uid} post {pid}"


def search_body(q: str, page: int, lang: str) -> str:
    """Body of ``GET /search?q=..&page=..&lang=..``."""
    return f"q={q} page={page} lang={lang}"
