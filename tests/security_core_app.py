"""An app that passes request data to webmini's response APIs, as real apps do.

Served by uWSGI (uwsgi.ini), the dev server and nginx in tests/test_security_core.py.
"""

from __future__ import annotations

import html

import webmini as web

urls = (
    "/", "Index",
    "/profile", "Profile",
    "/user/(.+)", "User",
    "/go", "Go",
    "/next", "Next",
    "/note", "Note",
    "/remember", "Remember",
    "/json", "Json",
    "/boom", "Boom",
    "/old/(.*)", r"redirect /new/\1",
    "/new/(.*)", "New",
    # web.py's idiom: drop a trailing slash.
    "/(.*)/", r"redirect /\1",
)


class Index:
    def GET(self) -> str:
        return "<html><body><h1>home</h1></body></html>"


class Profile:
    def GET(self) -> str:
        who = web.cookies(user="nobody").user
        return f"<html><body>profile of {html.escape(who)}</body></html>"


class User:
    def GET(self, name: str) -> str:
        raise web.notfound("no such user: " + name)


class Go:
    def GET(self) -> str:
        raise web.seeother(web.input(to="/").to)


class Next:
    def GET(self) -> str:
        target = web.input(next="/").next
        raise web.seeother(target if web.is_safe_url(target, {web.ctx.host}) else "/")


class Note:
    def GET(self) -> str:
        web.header("X-Note", web.input(v="").v)
        return "noted"


class Remember:
    def GET(self) -> str:
        web.setcookie("seen", "1", path=web.input(path="/").path)
        return "remembered"


class Json:
    def POST(self) -> dict[str, str]:
        return {"type": type(web.json()).__name__}


class Boom:
    def GET(self) -> str:
        raise RuntimeError("boom")


class New:
    def GET(self, rest: str) -> str:
        return "new " + rest


app = web.application(urls, globals())
application = app.wsgifunc()
