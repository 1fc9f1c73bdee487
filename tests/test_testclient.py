"""webmini.testing: headers as a case-insensitive mapping, params= and files=."""

import io

import webmini as web
from webmini.testing import TestClient


class Upload:
    def POST(self):
        i = web.input(doc={}, tag=[])
        return {
            "filename": i.doc.filename,
            "type": i.doc.type,
            "size": len(i.doc.value),
            "tags": i.tag,
            "q": web.input().get("q"),
        }


class Echo:
    def GET(self):
        web.header("X-Multi", "a")
        web.header("X-Multi", "b")
        return dict(web.input(a=[]))


app = web.application(("/upload", "Upload", "/echo", "Echo"), globals())
client = TestClient(app)


def test_headers_are_a_case_insensitive_mapping():
    r = client.get("/echo")
    assert r.headers["content-type"] == r.headers["Content-Type"] == "application/json"
    assert "CONTENT-LENGTH" in r.headers and "X-Nope" not in r.headers
    items = dict(r.headers.items())
    assert items["X-Multi"] == "a"                  # first value per name
    assert r.headers.get_all("x-multi") == ["a", "b"]
    assert {"X-Multi", "Content-Type", "Content-Length"} <= set(r.headers)
    assert len(r.headers) == len({k.lower() for k, _ in r.header_items})  # one per name
    assert r.headers.get("x-none", "default") == "default"


def test_params_go_to_the_query_string():
    assert client.get("/echo", params={"a": [1, 2], "b": "é"}).json() == {"a": ["1", "2"], "b": "é"}
    assert client.get("/echo?a=0", params=[("a", "1")]).json() == {"a": ["0", "1"]}


def test_files_are_sent_as_multipart_with_the_form_fields():
    r = client.post("/upload", data={"tag": ["x", "y"]}, params={"q": "s"},
                    files={"doc": ("report.pdf", b"%PDF-1.7" * 100)})
    assert r.status_code == 200, r.text
    assert r.json() == {"filename": "report.pdf", "type": "application/pdf", "size": 800,
                        "tags": ["x", "y"], "q": "s"}


def test_files_from_a_file_object_with_an_explicit_type():
    r = client.post("/upload", files={"doc": ("a\"b.txt", io.BytesIO(b"hello"), "text/x-custom")})
    assert r.json()["type"] == "text/x-custom" and r.json()["size"] == 5
    assert r.json()["filename"] == "a\"b.txt"   # escaped on the wire, decoded by multipart
