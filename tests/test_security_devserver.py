"""The dev server (`webmini run`): debug warning, credentials off the debug page,
autodelegate and uploads attacked over real HTTP."""

from __future__ import annotations

import http.client
import textwrap
from pathlib import Path
from typing import Any

from webmini.filenames import secure_filename

APP = textwrap.dedent('''
    import os
    import webmini as web
    from webmini.filenames import secure_filename

    urls = ("/admin/(.*)", "Admin", "/upload", "Upload", "/boom", "Boom")
    UPLOADS = os.environ["UPLOADS"]

    class Admin:
        GET = web.autodelegate("_")

        def _users(self):
            return "users"

    class Upload:
        def POST(self):
            f = web.input(file={}).file
            name = secure_filename(f.filename) or "upload.bin"
            with open(os.path.join(UPLOADS, name), "wb") as out:
                out.write(f.file.read())
            return name

    class Boom:
        def GET(self):
            secret_local = "s3cr3t-local"
            raise ValueError("boom")

    app = web.application(urls, globals())
''')


def _request(port: int, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _start(webmini_run: Any, tmp_path: Path, *args: str) -> Any:
    (tmp_path / "secapp.py").write_text(APP)
    (tmp_path / "uploads").mkdir(exist_ok=True)
    return webmini_run("secapp:app", *args, env={"UPLOADS": str(tmp_path / "uploads")})


def test_autodelegate_exposes_no_dunder_method(webmini_run: Any, tmp_path: Path) -> None:
    """autodelegate("_"): /admin/users works; /admin/_dir__, /admin/_class__ are 404."""
    server = _start(webmini_run, tmp_path)
    assert _request(server.port, "GET", "/admin/users") == (200, b"users")
    for path in ("/admin/_dir__", "/admin/_class__", "/admin/_init__", "/admin/_users",
                 "/admin/_repr__/x"):
        status, body = _request(server.port, "GET", path)
        assert status == 404, (path, body[:200])


def test_upload_filename_cannot_escape_the_upload_dir(webmini_run: Any, tmp_path: Path) -> None:
    """A multipart filename of ``../../x.py`` is stored as ``x.py`` inside the upload dir."""
    server = _start(webmini_run, tmp_path)
    boundary = "XyZ"
    for evil in ("../../escaped.py", "..\\..\\escaped2.py", ".htaccess"):
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{evil}\"\r\nContent-Type: text/plain\r\n\r\nprint(1)\r\n"
                f"--{boundary}--\r\n").encode()
        status, name = _request(server.port, "POST", "/upload", body,
                                {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert status == 200 and name.decode() == secure_filename(evil)
        assert (tmp_path / "uploads" / name.decode()).exists()
    assert not (tmp_path / "escaped.py").exists() and not (tmp_path.parent / "escaped.py").exists()
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [
        "escaped.py", "escaped2.py", "htaccess"]


def test_debug_mode_warns_and_hides_credentials(webmini_run: Any, tmp_path: Path) -> None:
    """`webmini run --debug` warns at start; its page shows no Authorization or Cookie value."""
    plain = _start(webmini_run, tmp_path)
    assert "debug mode" not in plain.output()
    debug = _start(webmini_run, tmp_path, "--debug")
    assert "WARNING: debug mode" in debug.output()
    status, page = _request(debug.port, "GET", "/boom", headers={
        "Authorization": "Bearer top-secret-token", "Cookie": "sid=secret-session-id"})
    assert status == 500 and b"ValueError" in page  # it is the debug page
    assert b"top-secret-token" not in page and b"secret-session-id" not in page


def test_secure_filename_cases() -> None:
    """Path parts, hidden files, devices and odd characters are removed."""
    assert secure_filename("../../etc/passwd") == "passwd"
    assert secure_filename("C:\\Users\\x\\report.pdf") == "report.pdf"
    assert secure_filename("..") == "" and secure_filename(None) == ""
    assert secure_filename("NUL.txt") == "_NUL.txt"
    assert secure_filename("r\u00e9sum\u00e9 final.doc") == "resume_final.doc"
    assert secure_filename("a\x00b/../c\u202e.exe") == "c.exe"
    assert len(secure_filename("x" * 1000 + ".tar")) <= 200
    assert secure_filename("x" * 1000 + ".tar").endswith(".tar")


def test_dev_server_own_answers_are_nosniff(webmini_run: Any, tmp_path: Path) -> None:
    """The 431 the dev server writes itself carries nosniff too."""
    import socket

    server = _start(webmini_run, tmp_path)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head = reply.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 431") and b"X-Content-Type-Options: nosniff" in head
