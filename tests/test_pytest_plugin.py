"""The pytest plugin shipped with webmini, run in a separate pytest process as a user would."""

import os
import subprocess
import sys
import textwrap

USER_APP = """
import webmini as web
from webmini.realtime.offload import offload


def square(x):
    return x * x


class Square:
    def GET(self, n):
        return {"square": offload(square, int(n))}


class Login:
    def POST(self):
        web.setcookie("user", web.input().user)
        return "ok"


class Whoami:
    def GET(self):
        return web.cookies(user="nobody").user


app = web.application(("/square/(\\\\d+)", "Square", "/login", "Login", "/whoami", "Whoami"),
                      globals())
"""

USER_TESTS = """
import threading

from gevent import monkey


def test_client(webmini_client):
    r = webmini_client.get("/whoami")
    assert r.status_code == 200 and r.text == "nobody"
    assert r.headers["content-type"].startswith("text/html")


def test_browser_keeps_cookies(webmini_browser):
    webmini_browser.post("/login", data={"user": "ann"})
    assert webmini_browser.get("/whoami").text == "ann"


def test_offload_in_a_patched_process(gevent_patched, webmini_client):
    assert gevent_patched is True
    assert monkey.is_module_patched("socket")
    assert webmini_client.get("/square/12").json() == {"square": 144}


def test_patched_before_collection():
    # webmini_gevent = true: patched before this module was imported
    import gevent.socket
    import socket
    assert socket.socket is gevent.socket.socket
    assert threading.Lock is not monkey.get_original("threading", "Lock")
"""


def _pytest(tmp_path, ini, *args):
    (tmp_path / "userapp.py").write_text(USER_APP)
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "pytest.ini").write_text(textwrap.dedent(ini))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )


def test_plugin_fixtures_from_the_ini(tmp_path):
    proc = _pytest(tmp_path, """
        [pytest]
        webmini_app = userapp:app
        webmini_gevent = true
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


def test_plugin_is_registered_by_entry_point(tmp_path):
    proc = _pytest(tmp_path, "[pytest]\n", "--trace-config", "-k", "nothing_matches")
    assert "webmini.pytest_plugin" in proc.stdout + proc.stderr


def test_offload_without_patching_does_not_raise_loopexit(tmp_path):
    # No early patch and no gevent_patched fixture: offload() still returns.
    (tmp_path / "conftest.py").write_text(
        "import pytest\nimport userapp\n\n@pytest.fixture\ndef webmini_app():\n"
        "    return userapp.app\n"
    )
    (tmp_path / "test_plain.py").write_text(
        "from gevent import monkey\n\n"
        "def test_square(webmini_client):\n"
        "    assert not monkey.is_module_patched('socket')\n"
        "    assert webmini_client.get('/square/9').json() == {'square': 81}\n"
    )
    proc = _pytest(tmp_path, "[pytest]\n", "test_plain.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_missing_app_is_a_clear_usage_error(tmp_path):
    proc = _pytest(tmp_path, "[pytest]\n", "-k", "test_client")
    assert proc.returncode != 0
    assert "define a `webmini_app` fixture" in proc.stdout + proc.stderr
