"""benchmarks/tfb: webmini's TechEmpower app passes TFB's checks under uwsgi.ini on a real MariaDB.

The benchmark app must keep working as webmini changes: a private MariaDB
gets benchmarks/tfb/schema.sql, real uWSGI serves benchmarks/tfb/webmini_app.py
with the repository's uwsgi.ini, and benchmarks/tfb/verify.py (content types,
Server and Date, JSON shapes, the fortunes page, clamping, updates that
persist) must find nothing. The verifier itself is checked against an app
that does not implement the tests.
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TFB = Path(__file__).resolve().parent.parent / "benchmarks" / "tfb"


def _load(name: str) -> ModuleType:
    """A module of benchmarks/tfb by file (the benchmarks are not a package the tests import)."""
    spec = importlib.util.spec_from_file_location(f"tfb_{name}", TFB / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


verify = _load("verify")
db_setup = _load("db_setup")


@pytest.fixture(scope="module")
def tfb_database(mariadb: Any) -> tuple[str, dict[str, Any]]:
    """hello_world loaded from schema.sql: (database URL, pymysql keywords)."""
    password = secrets.token_urlsafe(12)
    with mariadb.root_connection() as root:
        url = db_setup.load_schema(root, password, mariadb.host, mariadb.port)
    return url, verify.db_params_from_url(url)


def test_schema_has_tfb_rows(mariadb: Any, tfb_database: tuple[str, dict[str, Any]]) -> None:
    with mariadb.root_connection() as root, root.cursor() as cur:
        cur.execute("SELECT COUNT(*), MIN(id), MAX(id), MIN(randomNumber) >= 1, "
                    "MAX(randomNumber) <= 10000 FROM hello_world.World")
        assert cur.fetchone() == (10000, 1, 10000, 1, 1)
        cur.execute("SELECT id, message FROM hello_world.Fortune ORDER BY id")
        rows = cur.fetchall()
    assert len(rows) == 12
    assert {(i, m) for i, m in rows} == {f for f in verify.FORTUNES if f[0]}


@pytest.mark.parametrize("front", [{}, {"WEBMINI_HTTP_ROUTER": "2"}],
                         ids=["http-socket", "http-router"])
def test_webmini_tfb_app_passes_the_verifier_under_uwsgi_ini(
    start_uwsgi: Any, tfb_database: tuple[str, dict[str, Any]], front: dict[str, str]
) -> None:
    """Both of uwsgi.ini's direct-HTTP shapes (benchmarks/tfb/run.py measures both)."""
    url, params = tfb_database
    server = start_uwsgi(module="benchmarks.tfb.webmini_app:application",
                         env={"TFB_DATABASE_URL": url, **front})
    problems = verify.verify(f"http://{server.http_address}", params)
    assert problems == [], "\n".join(problems) + "\n" + server.log_tail()
    # Bad input is a 4xx, and the app keeps serving.
    assert server.get("/queries?queries=%ff%fe").status == 400
    reply = server.get("/queries?queries=3")
    assert reply.status == 200 and len(reply.json()) == 3


def test_verifier_rejects_an_app_that_is_not_tfb(start_uwsgi: Any) -> None:
    server = start_uwsgi(module="examples.hello:application", processes=1)
    problems = verify.verify(f"http://{server.http_address}")
    for path in ("/json", "/plaintext", "/db", "/queries", "/fortunes", "/updates"):
        assert any(p.startswith(path) for p in problems), (path, problems)


def test_fortunes_check_needs_escaping_and_order() -> None:
    good = verify.expected_fortunes_html()
    assert verify.html_tokens(good.replace("&quot;", "&#34;")) == verify.html_tokens(good)
    unescaped = good.replace("&lt;script&gt;", "<script>").replace("&lt;/script&gt;", "</script>")
    assert verify.html_tokens(unescaped) != verify.html_tokens(good)
    first, second = "<tr><td>4</td>", "<tr><td>5</td>"
    swapped = good.replace(first, "@@").replace(second, first).replace("@@", second)
    assert verify.html_tokens(swapped) != verify.html_tokens(good)
