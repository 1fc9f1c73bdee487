"""The app every server serves for the hostile-request suite (localservices/hostile.py).

``/smuggled`` answers a marker: a reply carrying it means a request hidden
inside another one's body was executed.
"""

import webmini as web

# Small limits so "over the limit" cases stay cheap to send.
web.config.max_body_size = 256 * 1024
web.config.max_form_fields = 100

urls = (
    "/", "Index",
    "/echo", "Echo",
    "/form", "Form",
    "/json", "Json",
    "/smuggled", "Smuggled",
)

SMUGGLED = "SMUGGLED-REQUEST-EXECUTED"


class Index:
    def GET(self):
        web.input()
        return "ok"

    def POST(self):
        return "ok"  # does not read the body: the server must skip it


class Echo:
    def POST(self):
        return str(len(web.data()))


class Form:
    def POST(self):
        return str(len(web.input()))


class Json:
    def POST(self):
        web.json()
        return "ok"


class Smuggled:
    def GET(self):
        return SMUGGLED

    POST = GET


app = web.application(urls, globals())
application = app.wsgifunc()
