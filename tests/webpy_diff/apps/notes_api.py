"""A web.py JSON API over web.database (SQLite file).

Written for web.py 0.76; the differential suite runs it unchanged on webmini.
"""

import json
import os

import web

web.config.debug = False

db = web.database(dbn="sqlite", db=os.path.join(os.environ["WEBPY_DIFF_DIR"], "notes.sqlite"))
db.query("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY AUTOINCREMENT,"
         " title TEXT NOT NULL, body TEXT, stars INTEGER DEFAULT 0)")
db.query("CREATE TABLE IF NOT EXISTS tags (note_id INTEGER, tag TEXT)")

urls = (
    "/notes", "notes",
    "/notes/(\\d+)", "note",
    "/notes/(\\d+)/tags", "tags",
    "/search", "search",
    "/stats", "stats",
    "/sql", "sql",
)
app = web.application(urls, globals())


def as_json(data, status=None):
    web.header("Content-Type", "application/json")
    if status:
        web.ctx.status = status
    return json.dumps(data, sort_keys=True)


def body():
    try:
        data = json.loads(web.data() or b"{}")
    except ValueError:
        raise web.badrequest("invalid JSON")
    if not isinstance(data, dict):
        raise web.badrequest("expected an object")
    return data


class notes:
    def GET(self):
        i = web.input(limit="10", offset="0", order="id")
        order = "stars DESC, id" if i.order == "stars" else "id"
        rows = db.select("notes", what="id, title, stars", order=order,
                         limit=int(i.limit), offset=int(i.offset))
        return as_json([dict(r) for r in rows])

    def POST(self):
        data = body()
        if not data.get("title"):
            raise web.badrequest("title required")
        with db.transaction():
            new_id = db.insert("notes", title=data["title"], body=data.get("body", ""),
                               stars=int(data.get("stars", 0)))
            for tag in data.get("tags", []):
                db.insert("tags", note_id=new_id, tag=tag)
        return as_json({"id": new_id}, "201 Created")


class note:
    def GET(self, note_id):
        rows = db.where("notes", id=int(note_id))
        if not rows:
            raise web.notfound("no such note")
        row = rows[0]
        return as_json({"id": row.id, "title": row.title, "body": row.body, "stars": row.stars})

    def PUT(self, note_id):
        data = body()
        count = db.update("notes", where="id=$note_id", vars={"note_id": int(note_id)},
                          title=data.get("title", ""), stars=int(data.get("stars", 0)))
        return as_json({"updated": count})

    def DELETE(self, note_id):
        t = db.transaction()
        try:
            db.delete("tags", where="note_id=$n", vars={"n": int(note_id)})
            count = db.delete("notes", where="id=$n", vars={"n": int(note_id)})
            if int(note_id) == 13:
                raise ValueError("unlucky")
        except ValueError:
            t.rollback()
            return as_json({"deleted": 0, "rolled_back": True})
        else:
            t.commit()
        return as_json({"deleted": count})


class tags:
    def GET(self, note_id):
        rows = db.select("tags", where="note_id=$n", vars={"n": int(note_id)}, order="tag")
        return as_json([r.tag for r in rows])


class search:
    def GET(self):
        q = web.input(q="").q
        rows = db.query("SELECT id, title FROM notes WHERE title LIKE $pat ORDER BY id",
                        vars={"pat": "%" + q + "%"})
        return as_json([[r.id, r.title] for r in rows])


class stats:
    def GET(self):
        row = db.query("SELECT COUNT(*) AS n, SUM(stars) AS stars FROM notes").first()
        top = db.select("notes", what="title", where=web.db.sqlors("stars >= ", [3, 5]),
                        order="id")
        return as_json({"n": row.n, "stars": row.stars, "top": [r.title for r in top]})


class sql:
    def GET(self):
        i = web.input(title="x")
        q = db.select("notes", where="title = $title", vars={"title": i.title}, _test=True)
        return as_json({"sql": str(q)})
