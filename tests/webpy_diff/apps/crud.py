"""A web.py CRUD app: items behind a login, web.form forms, web.session on disk.

Written for web.py 0.76; the differential suite runs it unchanged on webmini.
"""

import os

import web

web.config.debug = False
web.config.session_parameters["cookie_name"] = "crud_sid"
web.config.session_parameters["timeout"] = 3600

urls = (
    "/", "index",
    "/login", "login",
    "/logout", "logout",
    "/items", "items",
    "/items/(\\d+)", "item",
    "/items/(\\d+)/edit", "edit",
    "/flash", "flash",
)

app = web.application(urls, globals())
store = web.session.DiskStore(os.path.join(os.environ["WEBPY_DIFF_DIR"], "sessions"))
session = web.session.Session(app, store, initializer={"user": None, "visits": 0, "flash": ""})

ITEMS = {}

login_form = web.form.Form(
    web.form.Textbox("username", web.form.notnull, description="User name"),
    web.form.Password("password", web.form.notnull,
                      web.form.regexp(r".{4,}", "at least 4 characters")),
    web.form.Button("login", html="Log in"),
)

item_form = web.form.Form(
    web.form.Textbox("name", web.form.notnull, description="Name", class_="wide"),
    web.form.Dropdown("kind", [("t", "Tool"), ("b", "Book"), ("f", "Food & drink")]),
    web.form.Radio("size", ["S", "M", "L"]),
    web.form.Checkbox("done", value="yes"),
    web.form.Textarea("notes", rows="3"),
    web.form.Hidden("token", value="t1"),
    validators=[web.form.Validator("name and notes must differ",
                                   lambda i: i.name != i.notes)],
)


def require_login():
    if not session.user:
        raise web.seeother("/login")


class index:
    def GET(self):
        session.visits += 1
        return "visits=%d user=%s" % (session.visits, session.user)


class login:
    def GET(self):
        return login_form().render()

    def POST(self):
        f = login_form()
        if not f.validates():
            return "<p>%s</p>%s" % (web.websafe(f.note), f.render())
        session.user = f.d.username
        session.flash = "welcome " + f.d.username
        raise web.seeother("/items")


class logout:
    def POST(self):
        session.kill()
        raise web.seeother("/")


class flash:
    def GET(self):
        message, session.flash = session.flash, ""
        return web.websafe(message)


class items:
    def GET(self):
        require_login()
        rows = ["%d:%s:%s" % (k, web.websafe(v["name"]), v["kind"]) for k, v in sorted(ITEMS.items())]
        return "\n".join(rows) + "\n" + item_form().render_css()

    def POST(self):
        require_login()
        f = item_form()
        if not f.validates():
            web.ctx.status = "422 Unprocessable Entity"
            return f.render()
        new_id = len(ITEMS) + 1
        ITEMS[new_id] = dict(f.d)
        raise web.seeother("/items/%d" % new_id)


class item:
    def GET(self, item_id):
        require_login()
        it = ITEMS.get(int(item_id))
        if it is None:
            raise web.notfound("no item " + item_id)
        return "%s (%s) size=%s done=%s notes=%s" % (
            web.websafe(it["name"]), it["kind"], it["size"], it["done"], web.websafe(it["notes"]))


class edit:
    def GET(self, item_id):
        require_login()
        it = ITEMS.get(int(item_id))
        if it is None:
            raise web.notfound()
        f = item_form()
        f.fill(it)
        return f.render()

    def POST(self, item_id):
        require_login()
        f = item_form()
        if not f.validates():
            return f.render()
        ITEMS[int(item_id)] = dict(f.d)
        raise web.seeother("/items/" + item_id)
