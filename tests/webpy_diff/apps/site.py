"""A web.py site: a blog sub-app, processors and hooks, uploads, custom 404/500.

Written for web.py 0.76; the differential suite runs it unchanged on webmini.
"""

import json

import web

web.config.debug = False

EVENTS = []


def record_load():
    EVENTS.append("load " + web.ctx.path)


def record_unload():
    EVENTS.append("unload " + web.ctx.path)


def paths(handler):
    before = (web.ctx.path, web.ctx.fullpath, web.ctx.homepath)
    result = handler()
    after = (web.ctx.path, web.ctx.fullpath, web.ctx.homepath)
    web.header("X-Before", repr(before))
    web.header("X-After", repr(after))
    return result


# --- the blog sub-application ---------------------------------------------------------

blog_urls = (
    "", "blog_root",
    "/", "blog_index",
    "/post/(\\d+)", "blog_post",
    "/new", "blog_new",
    "/away", "blog_away",
    "/remember", "blog_remember",
    "/admin/(.*)", "blog_admin",
)


class blog_root:
    def GET(self):
        raise web.seeother("/")


class blog_index:
    def GET(self):
        return "blog index at " + web.ctx.path + " home " + web.ctx.homepath


class blog_post:
    def GET(self, pid):
        if pid == "0":
            raise web.notfound()
        return "post " + pid


class blog_new:
    def POST(self):
        raise web.seeother("post/7")


class blog_away:
    def GET(self):
        raise web.redirect("/post/1")


class blog_remember:
    def GET(self):
        web.setcookie("seen", "yes")
        return "remembered"


class blog_admin:
    GET = web.autodelegate("GET_")

    def GET_users(self):
        return "users"

    def GET_stats(self, rest=""):
        return "stats" + rest


blog = web.application(blog_urls, locals())


def blog_tag(handler):
    web.header("X-Blog", "yes " + web.ctx.path)
    return handler()


blog.add_processor(blog_tag)

# --- the main application ---------------------------------------------------------------

urls = (
    "/", "index",
    "/blog", blog,
    "/upload", "upload",
    "/lower", "lower",
    "/crash", "crash",
    "/page", "page",
    "/ctx", "ctxcheck",
    "/built", "built",
    "/events", "events",
)


class index:
    def GET(self):
        return "home"


class upload:
    def POST(self):
        i = web.input(doc={}, note="")
        doc = i.doc
        return json.dumps({"name": doc.filename, "size": len(doc.value),
                           "read": len(doc.file.read()), "note": i.note})


class lower:
    def GET(self):
        return "upper-case GET"

    def get(self):
        return "never"


class crash:
    def GET(self):
        raise ValueError("boom")


class page:
    def GET(self):
        return web.changequery(page=2)


class ctxcheck:
    def GET(self):
        return json.dumps({"has_path": hasattr(web.ctx, "path"),
                           "has_nothing": hasattr(web.ctx, "nothing_here")})


class built:
    def GET(self):
        web.seeother("/")  # built, neither raised nor returned: web.py still redirects
        return "built"


class events:
    def GET(self):
        out = list(EVENTS)
        EVENTS.clear()
        return json.dumps(out)


app = web.application(urls, globals())
app.add_processor(web.loadhook(record_load))
app.add_processor(web.unloadhook(record_unload))
app.add_processor(paths)


def my_notfound():
    return web.notfound("nothing at " + web.ctx.path)


def my_internalerror():
    return web.internalerror("sorry, it broke")


app.notfound = my_notfound
app.internalerror = my_internalerror
