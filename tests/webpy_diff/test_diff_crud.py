"""A CRUD app with forms and sessions: web.py 0.76 vs webmini, same app file."""

import pytest
from harness import Pair


@pytest.fixture
def pair(tmp_path):
    return Pair("crud", tmp_path)


def test_session_counts_visits(pair):
    for _ in range(3):
        pair.same("GET", "/")
    assert pair.webmini.cookies["crud_sid"] != pair.webpy.cookies["crud_sid"]  # random ids


def test_login_required_redirects(pair):
    pair.same("GET", "/items")
    pair.same("GET", "/items/1")


def test_login_form_renders_and_validates(pair):
    pair.same("GET", "/login")
    pair.same("POST", "/login", data={"username": "", "password": "x"})
    pair.same("POST", "/login", data={"username": "ann", "password": "abc"})
    pair.same("POST", "/login", data={"username": "<ann>", "password": "secret"})
    pair.same("GET", "/flash")
    pair.same("GET", "/flash")
    pair.same("GET", "/")


def test_create_edit_and_show_items(pair):
    pair.same("POST", "/login", data={"username": "ann", "password": "secret"})
    pair.same("GET", "/items")
    pair.same("POST", "/items", data={"name": "", "kind": "t"})
    pair.same("POST", "/items", data={"name": "same", "notes": "same", "kind": "t"})
    pair.same("POST", "/items", data={"name": "Saw <big>", "kind": "t", "size": "M", "done": "yes",
                                      "notes": "sharp & new", "token": "t1"})
    pair.same("GET", "/items/1")
    pair.same("GET", "/items/1/edit")
    pair.same("POST", "/items/1/edit", data={"name": "Saw", "kind": "f", "size": "L", "notes": ""})
    pair.same("GET", "/items/1")
    pair.same("GET", "/items")
    pair.same("GET", "/items/9")
    pair.same("GET", "/items/9/edit")


def test_logout_kills_the_session(pair):
    pair.same("POST", "/login", data={"username": "ann", "password": "secret"})
    pair.same("GET", "/")
    pair.same("POST", "/logout")
    pair.same("GET", "/")
    pair.same("GET", "/items")
