"""Request data: input(), data(), json(), cookies(), uploads and limits."""

import io

import pytest

import webmini as web
from webmini.testing import TestClient


class Form:
    def GET(self):
        i = web.input(name="anon", tags=[], page="1")
        return {"name": i.name, "tags": i.tags, "page": i.page}

    def POST(self):
        i = web.input(tags=[])
        return {k: v for k, v in i.items()}


class Required:
    def GET(self):
        i = web.input("id")
        return i.id


class Raw:
    def POST(self):
        return web.data()


class Json:
    def POST(self):
        return {"got": web.json()}


class Upload:
    def POST(self):
        i = web.input(doc={}, raw="")
        return {
            "filename": i.doc.filename,
            "type": i.doc.type,
            "content": i.doc.value.decode(),
            "raw": i.raw if isinstance(i.raw, str) else i.raw.decode(),
            "note": i.note,
        }


class Cookies:
    def GET(self):
        c = web.cookies(theme="light")
        return {"theme": c.theme, "sid": c.get("sid")}


class NeedCookie:
    def GET(self):
        return web.cookies("sid").sid


class Header:
    def GET(self):
        return web.getheader("X-Token") or "none"


urls = (
    "/form", "Form", "/required", "Required", "/raw", "Raw", "/json", "Json",
    "/upload", "Upload", "/cookies", "Cookies", "/needcookie", "NeedCookie", "/header", "Header",
)
app = web.application(urls, globals())
client = TestClient(app)


def multipart(fields, files):
    boundary = "----webminiboundary"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for name, (filename, ctype, content) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
        )
        out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_query_defaults_and_list_defaults():
    assert client.get("/form").json() == {"name": "anon", "tags": [], "page": "1"}
    r = client.get("/form?name=ann&tags=a&tags=b&name=bob")
    assert r.json() == {"name": "bob", "tags": ["a", "b"], "page": "1"}


def test_escaped_and_utf8_query():
    r = client.get("/form?name=%E4%BD%A0%E5%A5%BD+x")
    assert r.json()["name"] == "你好 x"


def test_non_utf8_query_is_400():
    assert client.get("/form?name=%FF%FE").status_code == 400


def test_urlencoded_body_overrides_query():
    r = client.post("/form?name=q&x=1", data={"name": "form", "tags": ["a", "b"]})
    assert r.json() == {"name": "form", "tags": ["a", "b"], "x": "1"}


def test_required_field_missing_is_400():
    r = client.get("/required")
    assert r.status_code == 400 and "id" in r.text
    assert client.get("/required?id=5").text == "5"


def test_raw_body_and_non_utf8_form_body():
    assert client.post("/raw", data=b"\x00\xffbytes").body == b"\x00\xffbytes"
    r = client.post("/form", data=b"name=%FF", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    r = client.post("/form", data=b"name=\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400


def test_json_body_and_invalid_json():
    assert client.post("/json", json={"a": [1, 2]}).json() == {"got": {"a": [1, 2]}}
    r = client.post("/json", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.text
    assert client.post("/json", data=b"\xff\xfe", headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/json", data=b"").status_code == 400


def test_multipart_upload():
    body, headers = multipart({"note": "hello"}, {"doc": ("a.txt", "text/plain", b"file body"),
                                                  "raw": ("b.bin", "application/octet-stream", b"xyz")})
    r = client.post("/upload", data=body, headers=headers)
    assert r.json() == {"filename": "a.txt", "type": "text/plain", "content": "file body",
                        "raw": "xyz", "note": "hello"}


def test_malformed_multipart_is_400():
    headers = {"Content-Type": "multipart/form-data; boundary=zzz"}
    assert client.post("/upload", data=b"garbage without boundary", headers=headers).status_code == 400
    headers = {"Content-Type": "multipart/form-data"}
    assert client.post("/upload", data=b"x", headers=headers).status_code == 400


def test_body_size_limit_is_413(monkeypatch):
    monkeypatch.setitem(web.config, "max_body_size", 100)
    assert client.post("/raw", data=b"x" * 101).status_code == 413
    assert client.post("/raw", data=b"x" * 100).status_code == 200
    body, headers = multipart({"note": "x" * 200}, {})
    assert client.post("/upload", data=body, headers=headers).status_code == 413


def test_field_count_limits_are_413(monkeypatch):
    monkeypatch.setitem(web.config, "max_form_fields", 5)
    assert client.get("/form?" + "&".join(f"f{i}=1" for i in range(6))).status_code == 413
    assert client.get("/form?" + "&".join(f"f{i}=%20" for i in range(6))).status_code == 413
    body, headers = multipart({f"f{i}": "v" for i in range(6)}, {})
    assert client.post("/upload", data=body, headers=headers).status_code == 413


def test_bad_content_length_is_400():
    # wsgiref.validate refuses such an environ itself, so this one goes unvalidated.
    r = TestClient(app, validate=False).post("/raw", data=b"abc", headers={"Content-Length": "nope"})
    assert r.status_code == 400
    r = client.post("/raw", data=b"abc", headers={"Content-Length": "10"})
    assert r.status_code == 400  # body shorter than announced


def test_cookies_defaults_required_and_quoting():
    r = client.get("/cookies", headers={"Cookie": 'sid=abc; theme="dark"; junk; x=%E2%9C%93'})
    assert r.json() == {"theme": "dark", "sid": "abc"}
    assert client.get("/cookies").json() == {"theme": "light", "sid": None}
    assert client.get("/needcookie").status_code == 400
    # Not UTF-8: skipped (never a 400 echoing it), the other cookies kept.
    r = client.get("/cookies", headers={"Cookie": "sid=%FF; theme=dark"})
    assert r.status_code == 200 and r.json() == {"theme": "dark", "sid": None}


def test_request_headers():
    assert client.get("/header", headers={"X-Token": "t1"}).text == "t1"
    assert client.get("/header").text == "none"


def test_non_utf8_path_is_400():
    r = client.get("/", env={"PATH_INFO": "/caf\xe9"})  # latin-1 byte 0xE9, not UTF-8
    assert r.status_code == 400


@pytest.mark.parametrize("path", ["/form", "/raw"])
def test_utf8_path_is_decoded(path):
    ns = {"U": type("U", (), {"GET": lambda self, x: x})}
    a = web.application(("/u/(.+)", "U"), ns)
    r = TestClient(a).get("/u/x", env={"PATH_INFO": "/u/caf\xc3\xa9"})
    assert r.text == "café"
