"""webmini.files.serve_file: types, conditional requests, ranges, HEAD, and no way out of root."""

import email.utils
import os

import pytest

import webmini as web
from webmini.files import serve_file
from webmini.testing import TestClient


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "css" / "site.css").write_text("body { color: red }\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * 4)          # 1024 bytes
    (root / ".env").write_text("SECRET=1")
    (tmp_path / "outside.txt").write_text("private")
    os.symlink(tmp_path / "outside.txt", root / "escape.txt")
    os.symlink(root / "css" / "site.css", root / "inside.css")

    class Static:
        def GET(self, name):
            return serve_file(root, name, max_age=60)

        def POST(self, name):
            return serve_file(root, name)

    class Download:
        def GET(self, name):
            return serve_file(root, name, download_name="résumé.bin")

    app = web.application(("/static/(.*)", Static, "/dl/(.*)", Download), {})
    return TestClient(app), root


def test_whole_file_with_type_and_validators(site):
    client, root = site
    r = client.get("/static/css/site.css")
    assert r.status_code == 200 and r.text == "body { color: red }\n"
    assert r.headers["Content-Type"] == "text/css; charset=utf-8"
    assert r.headers["Content-Length"] == str(len(r.body))
    assert r.headers["Cache-Control"] == "max-age=60"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    mtime = os.stat(root / "css" / "site.css").st_mtime
    assert r.headers["Last-Modified"] == email.utils.formatdate(int(mtime), usegmt=True)
    assert r.headers["ETag"].startswith('"')
    assert client.get("/static/data.bin").headers["Content-Type"] == "application/octet-stream"


def test_etag_and_if_modified_since_give_304(site):
    client, _ = site
    first = client.get("/static/css/site.css")
    r = client.get("/static/css/site.css", headers={"If-None-Match": first.headers["ETag"]})
    assert r.status_code == 304 and r.body == b"" and "Content-Type" not in r.headers
    r = client.get("/static/css/site.css", headers={"If-None-Match": 'W/' + first.headers["ETag"]})
    assert r.status_code == 304
    r = client.get("/static/css/site.css", headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    lm = first.headers["Last-Modified"]
    assert client.get("/static/css/site.css", headers={"If-Modified-Since": lm}).status_code == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get("/static/css/site.css", headers={"If-Modified-Since": old}).status_code == 200
    assert client.get("/static/css/site.css",
                      headers={"If-Modified-Since": "garbage"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110)
    r = client.get("/static/css/site.css", headers={"If-None-Match": '"x"', "If-Modified-Since": lm})
    assert r.status_code == 200


def test_ranges(site):
    client, _ = site
    whole = bytes(range(256)) * 4
    r = client.get("/static/data.bin", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.body == whole[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/1024" and r.headers["Content-Length"] == "10"
    r = client.get("/static/data.bin", headers={"Range": "bytes=1000-"})
    assert r.body == whole[1000:] and r.headers["Content-Range"] == "bytes 1000-1023/1024"
    r = client.get("/static/data.bin", headers={"Range": "bytes=-4"})
    assert r.body == whole[-4:]
    r = client.get("/static/data.bin", headers={"Range": "bytes=1020-5000"})
    assert r.status_code == 206 and r.body == whole[1020:]
    r = client.get("/static/data.bin", headers={"Range": "bytes=2000-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */1024"
    assert r.headers["Content-Type"].startswith("text/plain")
    # several ranges or bad syntax: the whole file
    assert client.get("/static/data.bin", headers={"Range": "bytes=0-1,5-6"}).body == whole
    assert client.get("/static/data.bin", headers={"Range": "pages=1"}).status_code == 200
    # If-Range with a stale validator: the whole file
    r = client.get("/static/data.bin", headers={"Range": "bytes=0-1", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.body == whole
    etag = r.headers["ETag"]
    r = client.get("/static/data.bin", headers={"Range": "bytes=0-1", "If-Range": etag})
    assert r.status_code == 206 and r.body == whole[:2]


def test_head_has_content_length_and_no_body(site):
    client, _ = site
    r = client.head("/static/data.bin")
    assert r.status_code == 200 and r.body == b"" and r.headers["Content-Length"] == "1024"
    r = client.head("/static/data.bin", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.body == b"" and r.headers["Content-Length"] == "100"


@pytest.mark.parametrize("path", [
    "/static/../outside.txt", "/static/css/../../outside.txt", "/static/escape.txt",
    "/static/.env", "/static/css", "/static/", "/static/nope.txt", "/static/css%00.css",
    "/static/..%2Foutside.txt", "/static/css\\..\\..\\outside.txt",
])
def test_no_way_out_of_the_root(site, path):
    client, _ = site
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status)
    assert b"private" not in r.body and b"SECRET" not in r.body


def test_symlink_inside_the_root_is_served(site):
    client, _ = site
    assert client.get("/static/inside.css").text == "body { color: red }\n"


def test_other_methods_and_download_name(site):
    client, _ = site
    r = client.post("/static/data.bin")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    r = client.get("/dl/data.bin")
    assert r.headers["Content-Disposition"] == "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.bin"


def test_file_handle_is_closed_after_a_streamed_range(site):
    client, _ = site
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        client.get("/static/data.bin", headers={"Range": "bytes=0-9"})
        client.get("/static/data.bin")
        client.get("/static/data.bin", headers={"Range": "bytes=9999-"})
        client.head("/static/data.bin")
    assert len(os.listdir("/proc/self/fd")) <= before + 1
