"""The URL table is resolved when the app is made servable (wsgifunc), not by the first request."""

import logging

import pytest

import webmini as web


class Index:
    def GET(self):
        return "hi"


def test_wsgifunc_refuses_an_undefined_handler_with_did_you_mean():
    app = web.application(("/", "Indx"), {"Index": Index})
    with pytest.raises(ValueError, match="'/' -> 'Indx', which is not defined; did you mean 'Index'"):
        app.wsgifunc()


def test_wsgifunc_names_the_missing_globals():
    app = web.application(("/", "Index"))
    with pytest.raises(ValueError, match=r"web.application\(urls, globals\(\)\)"):
        app.wsgifunc()


def test_a_dotted_name_that_does_not_import_is_refused():
    app = web.application(("/", "nosuchpkg.Handler"), {})
    with pytest.raises(ValueError, match="No module named 'nosuchpkg'"):
        app.wsgifunc()


def test_a_pattern_without_a_leading_slash_is_logged(caplog):
    app = web.application(("users", Index), {})
    with caplog.at_level(logging.WARNING):
        app.wsgifunc()
    assert any("'users' does not start with '/'" in r.getMessage() for r in caplog.records)


def test_a_bad_regex_names_its_route():
    with pytest.raises(ValueError, match=r"bad regex in the URL table: '/\(\[' -> 'Index'"):
        web.application(("/([", "Index"), {"Index": Index})


def test_sub_applications_are_checked_too():
    sub = web.application(("/x", "Missing"), {})
    app = web.application(("/admin", sub), {})
    with pytest.raises(ValueError, match="'/admin/x' -> 'Missing'"):
        app.wsgifunc()
