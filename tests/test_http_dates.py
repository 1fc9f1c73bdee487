"""HTTP dates on the wire never follow the process locale (checked under de_DE.UTF-8).

scripts/test.sh generates the de_DE.UTF-8 locale when it is missing; a
missing locale fails this test, it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(r'''
    import datetime, locale, os, re, tempfile, time

    locale.setlocale(locale.LC_ALL, "")      # as a server or an app may do
    wed = time.strptime("2026-12-02", "%Y-%m-%d")
    assert time.strftime("%a %b", wed) == "Mi Dez", time.strftime("%a %b", wed)

    import webmini as web
    from webmini.files import serve_file
    from webmini.testing import TestClient

    root = tempfile.mkdtemp()
    with open(os.path.join(root, "f.txt"), "w") as f:
        f.write("x")
    when = datetime.datetime(2026, 12, 2, 10, 0, 0, tzinfo=datetime.UTC)

    class Dates:
        def GET(self):
            web.expires(3600)
            web.lastmodified(when)
            web.setcookie("a", "1", expires=3600)
            web.setcookie("b", "2", expires=when)
            return "ok"

    class File:
        def GET(self):
            return serve_file(root, "f.txt")

    app = web.application(("/", Dates, "/f", File), {})
    client = TestClient(app)
    r = client.get("/")
    dates = [r.headers["Expires"], r.headers["Last-Modified"]]
    dates += [c.split("Expires=")[1].split(";")[0] for c in r.headers.get_all("Set-Cookie")]
    dates.append(client.get("/f").headers["Last-Modified"])
    english = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                         r"\d\d:\d\d:\d\d GMT")
    for d in dates:
        assert english.fullmatch(d), dates
    assert r.headers["Last-Modified"] == "Wed, 02 Dec 2026 10:00:00 GMT"
    # and the 304 round trip parses what was sent
    class Cond:
        def GET(self):
            web.modified(date=when)
            return "body"
    app.add_mapping("/c", Cond)
    assert client.get("/c", headers={"If-Modified-Since": r.headers["Last-Modified"]}).status_code == 304
    print("ok", len(dates))
''')


def test_http_dates_are_english_under_a_german_locale():
    env = dict(os.environ, LC_ALL="de_DE.UTF-8", LANG="de_DE.UTF-8")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=60)
    assert "unsupported locale setting" not in proc.stderr, (
        "the de_DE.UTF-8 locale is missing: scripts/test.sh generates it "
        "(localedef -i de_DE -f UTF-8 de_DE.UTF-8)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok 5"
