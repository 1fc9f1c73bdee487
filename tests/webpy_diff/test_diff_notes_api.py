"""A JSON API over web.database on a SQLite file: web.py 0.76 vs webmini, same app file."""

import json

import pytest
from harness import Pair


@pytest.fixture
def pair(tmp_path):
    return Pair("notes_api", tmp_path)


def post(pair, data):
    return pair.same("POST", "/notes", data=json.dumps(data),
                     headers={"Content-Type": "application/json"})


def test_create_list_and_read(pair):
    assert json.loads(post(pair, {"title": "first", "body": "b", "stars": 3, "tags": ["x", "a"]}).body) == {"id": 1}
    post(pair, {"title": "second", "stars": 5})
    post(pair, {"title": "third it's \"quoted\"", "stars": 1})
    pair.same("GET", "/notes")
    pair.same("GET", "/notes?limit=2&offset=1")
    pair.same("GET", "/notes?order=stars")
    pair.same("GET", "/notes/1")
    pair.same("GET", "/notes/1/tags")
    pair.same("GET", "/notes/99")


def test_bad_input(pair):
    pair.same("POST", "/notes", data="{not json", headers={"Content-Type": "application/json"})
    pair.same("POST", "/notes", data="[1]", headers={"Content-Type": "application/json"})
    post(pair, {"body": "no title"})


def test_update_delete_and_rollback(pair):
    for n in range(14):
        post(pair, {"title": f"n{n}", "stars": n % 6, "tags": ["t"]})
    pair.same("PUT", "/notes/2", data=json.dumps({"title": "renamed", "stars": 4}))
    pair.same("GET", "/notes/2")
    pair.same("DELETE", "/notes/3")
    pair.same("DELETE", "/notes/13")  # rolled back: the note and its tags stay
    pair.same("GET", "/notes/13")
    pair.same("GET", "/notes/13/tags")
    pair.same("GET", "/notes?limit=20")


def test_queries_with_vars_are_parameters(pair):
    post(pair, {"title": "it's 100% done", "stars": 5})
    post(pair, {"title": "other", "stars": 3})
    pair.same("GET", "/search?q=100%25")
    pair.same("GET", "/search?q=' OR 1=1 --")
    pair.same("GET", "/stats")
    pair.same("GET", "/sql?title=it's")
