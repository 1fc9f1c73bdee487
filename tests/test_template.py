"""web.template in webmini: handlers returning templates, reload rules, errors, debug page, Jinja2."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

import webmini as web
from webmini.config import config
from webmini.serving import debugpage
from webmini.testing import TestClient
from webmini.webpy import template


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    """A template directory with a page, a layout, a text template and a sub-directory."""
    (tmp_path / "layout.html").write_text(
        "$def with (content)\n<html><title>$:content.title</title>\n$:content\n</html>\n")
    (tmp_path / "page.html").write_text(
        "$def with (name)\n$var title: Hi $name\n<p>$name</p>\n")
    (tmp_path / "note.txt").write_text("$def with (name)\n$var title: Note\nplain $name\n")
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "panel.html").write_text("$def with ()\n$var title: Admin\npanel\n")
    return tmp_path


@pytest.fixture
def settings() -> Any:
    """Restore debug and reload after a test changes them."""
    saved = config.debug, config.reload
    yield config
    config.debug, config.reload = saved


def test_reachable_the_web_py_ways() -> None:
    import webmini.template

    from webmini import template as from_import

    assert web.template is webmini.template is from_import is template
    assert web.template.render is template.Render
    import webmini.contrib.template

    assert webmini.contrib.template.render_jinja.__name__ == "render_jinja"


# -- handlers -----------------------------------------------------------------

def _app(render: Any) -> web.application:
    class Page:
        def GET(self) -> Any:
            return render.page("<Ann>")

    class Typed:
        def GET(self) -> Any:
            web.header("Content-Type", "application/xhtml+xml")
            return render.page("x")

    class Note:
        def GET(self) -> Any:
            return render.note("<Ann>")

    class Broken:
        def GET(self) -> Any:
            return render.boom(0)

    class Fragment:
        def GET(self) -> Any:
            return {"html": str(render.admin.panel())}

    return web.application(("/", Page, "/typed", Typed, "/note", Note, "/boom", Broken,
                            "/fragment", Fragment), {})


def test_handler_returns_a_template_result_with_its_layout(tdir: Path) -> None:
    client = TestClient(_app(template.render(str(tdir), base="layout")).wsgifunc())
    resp = client.request("GET", "/")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.body == b"<html><title>Hi &lt;Ann&gt;</title>\n<p>&lt;Ann&gt;</p>\n\n</html>\n"
    resp = client.request("GET", "/typed")
    assert resp.headers["Content-Type"] == "application/xhtml+xml"
    # A .txt template is sent as text/plain, as web.py does: never as HTML.
    resp = client.request("GET", "/note")
    assert resp.headers["Content-Type"] == "text/plain"
    assert resp.body == b"<html><title>Note</title>\nplain <Ann>\n\n</html>\n"


def test_rendering_an_html_fragment_keeps_a_json_answer_json(tdir: Path) -> None:
    client = TestClient(_app(template.render(str(tdir))).wsgifunc())
    resp = client.request("GET", "/fragment")
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"html": "panel\n"}


def test_debug_page_shows_the_failing_template_line(tdir: Path, settings: Any) -> None:
    (tdir / "boom.html").write_text("$def with (n)\n<p>ok</p>\n<p>$(10 // n) &lt;-here</p>\n")
    client = TestClient(_app(template.render(str(tdir))).wsgifunc())
    settings.debug = True
    resp = client.request("GET", "/boom")
    page = resp.body.decode()
    assert resp.status_code == 500
    assert f"{tdir / 'boom.html'}:3 in <b>__template__</b>" in page
    assert "&lt;p&gt;$(10 // n) &amp;lt;-here&lt;/p&gt;" in page  # the template line, escaped


def test_traceback_and_linecache_point_at_the_template(tdir: Path) -> None:
    (tdir / "boom.html").write_text("$def with (n)\n$for i in [1]:\n    <b>$(1 // n)</b>\n")
    try:
        template.render(str(tdir)).boom(0)
    except ZeroDivisionError:
        frames = traceback.extract_tb(sys.exc_info()[2])
        page = debugpage.render(sys.exc_info(), {"REQUEST_METHOD": "GET"})
    assert (frames[-1].filename, frames[-1].lineno) == (str(tdir / "boom.html"), 3)
    assert frames[-1].line == "<b>$(1 // n)</b>"
    assert "&lt;b&gt;$(1 // n)&lt;/b&gt;" in page
    # A template made from a string shows its line too.
    try:
        template.Template("$def with (n)\n\n$(2 // n)", filename="<inline-x>")(0)
    except ZeroDivisionError:
        frames = traceback.extract_tb(sys.exc_info()[2])
    assert (frames[-1].filename, frames[-1].lineno, frames[-1].line) == \
        ("<inline-x>", 3, "$(2 // n)")


# -- compile once, reload only when asked ---------------------------------------

def _edit(path: Path, text: str) -> None:
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a visibly newer file


def _stats_of(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real_stat = os.stat

    def counting_stat(p: Any, *args: Any, **kwargs: Any) -> Any:
        if str(p) == str(path):
            seen.append(str(p))
        return real_stat(p, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    return seen


def test_production_never_looks_at_the_file_again(tdir: Path, settings: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    settings.debug = settings.reload = False
    render = template.render(str(tdir))
    assert str(render.page("a")) == "<p>a</p>\n"
    _edit(tdir / "page.html", "$def with (name)\nv2 $name\n")
    stats = _stats_of(tdir / "page.html", monkeypatch)
    for _ in range(3):
        assert str(render.page("a")) == "<p>a</p>\n"
    assert stats == []


@pytest.mark.parametrize("flag", ["debug", "reload"])
def test_debug_or_reload_recompiles_a_changed_file(tdir: Path, settings: Any, flag: str) -> None:
    settings.debug = settings.reload = False
    render = template.render(str(tdir), base="layout")
    assert "<p>a</p>" in str(render.page("a"))
    setattr(settings, flag, True)  # may be switched on after the render object exists
    first = render._template("page")
    assert render._template("page") is first  # unchanged file: not recompiled
    _edit(tdir / "page.html", "$def with (name)\n$var title: T\nv2 $name\n")
    _edit(tdir / "layout.html", "$def with (content)\n[$content.title] $:content")
    assert str(render.page("a")) == "[T] v2 a\n\n"


def test_cache_argument_overrides(tdir: Path, settings: Any) -> None:
    settings.debug = True
    cached = template.render(str(tdir), cache=True)
    checked = template.render(str(tdir), cache=False)
    assert str(cached.page("a")) == str(checked.page("a")) == "<p>a</p>\n"
    _edit(tdir / "page.html", "$def with (name)\nv2 $name\n")
    assert str(cached.page("a")) == "<p>a</p>\n"
    assert str(checked.page("a")) == "v2 a\n"


def test_same_text_is_compiled_once() -> None:
    text = "$def with (x)\nonce $x <unique-marker-7>"
    before = template._compiled.cache_info()
    results = [str(template.Template(text, filename="once.html")(i)) for i in range(5)]
    after = template._compiled.cache_info()
    assert results[4] == "once 4 <unique-marker-7>\n"
    assert after.misses - before.misses == 1 and after.hits - before.hits == 4


def test_missing_template_and_dunder_names(tdir: Path) -> None:
    render = template.render(str(tdir))
    with pytest.raises(AttributeError, match="No template named nothere"):
        render.nothere  # noqa: B018
    with pytest.raises(AttributeError):
        render.__deepcopy__  # noqa: B018
    assert isinstance(render.admin, template.Render)
    assert str(render.admin.panel()) == "panel\n"


# -- Jinja2 ----------------------------------------------------------------------

def test_render_jinja_escapes_html_by_default(tmp_path: Path) -> None:
    from webmini.contrib.template import render_jinja

    (tmp_path / "hello.html").write_text("<p>{{ name }} {{ site }}</p>")
    render = render_jinja(str(tmp_path), globals={"site": "S&P"})
    assert render.hello(name="<b>") == "<p>&lt;b&gt; S&amp;P</p>"
    raw = render_jinja(str(tmp_path), autoescape=False)
    assert raw.hello(name="<b>", site="&") == "<p><b> &</p>"
    import jinja2

    with pytest.raises(jinja2.TemplateNotFound):
        getattr(render, "../hello")
