"""Sub-apps, processors, hooks, uploads, custom 404/500: web.py 0.76 vs webmini, same app file."""

import json

import pytest
from harness import Pair


@pytest.fixture
def pair(tmp_path):
    return Pair("site", tmp_path)


def test_home_and_processors_see_full_paths(pair):
    pair.same("GET", "/")
    pair.same("GET", "/blog/")
    pair.same("GET", "/blog/post/3?x=1")


def test_hooks_run_around_sub_apps(pair):
    pair.same("GET", "/blog/post/3")
    pair.same("GET", "/events")


def test_sub_app_redirects_resolve_against_its_home(pair):
    pair.same("GET", "/blog")
    pair.same("POST", "/blog/new", data={"x": "1"})
    pair.same("GET", "/blog/away")


def test_sub_app_notfound_is_inherited(pair):
    pair.same("GET", "/blog/post/0")
    pair.same("GET", "/blog/missing")
    pair.same("GET", "/missing")


def test_setcookie_default_path_follows_home(pair):
    pair.same("GET", "/blog/remember")


def test_autodelegate(pair):
    pair.same("GET", "/blog/admin/users")
    pair.same("GET", "/blog/admin/stats/x/y")
    pair.same("GET", "/blog/admin/nothing")


def test_upload(pair):
    b = pair.same("POST", "/upload", data={"note": "hi"},
                  files={"doc": ("report.txt", b"hello text", "text/plain")})
    assert json.loads(b.body) == {"name": "report.txt", "size": 10, "read": 10, "note": "hi"}


def test_binary_upload_intended_difference(pair):
    # web.py 0.76 decodes an upload's .value as UTF-8 text and fails (500) on a
    # binary file; webmini gives the bytes.
    files = {"doc": ("report.pdf", b"%PDF-1.4 \xff\xfe body", "application/pdf")}
    a, b = pair.both("POST", "/upload", data={"note": "hi"}, files=files)
    assert a.status.startswith("500") and b.status == "200 OK"
    assert json.loads(b.body)["size"] == 16


def test_method_names_are_case_sensitive(pair):
    pair.same("GET", "/lower")
    pair.same("get", "/lower")


def test_internalerror_override_body_is_sent(pair):
    pair.same("GET", "/crash")


def test_changequery_keeps_repeated_parameters(pair):
    pair.same("GET", "/page?tag=a&tag=b&page=1")


def test_ctx_hasattr(pair):
    pair.same("GET", "/ctx")


def test_built_but_not_raised_error(pair):
    pair.same("GET", "/built")
