"""What `pip install webmini` gets: metadata, sdist contents, and a fresh virtualenv without extras."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import textwrap
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_metadata(dist):
    _, wheel = dist
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(meta_name).decode())
        entry_points = z.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
        names = z.namelist()
    assert meta["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Programming Language :: Python :: 3.13" in meta.get_all("Classifier")
    assert meta["Author"]
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("gevent") and "extra" not in r for r in requires)
    extras = set(meta.get_all("Provides-Extra"))
    assert {"mysql", "memcache", "uwsgi", "gunicorn", "websocket", "reload"} <= extras
    assert not extras & {"test", "bench", "gevent"}, "development groups are not published"
    assert "[pytest11]\nwebmini = webmini.pytest_plugin" in entry_points
    assert "webmini = webmini.cli:main" in entry_points
    assert "webmini/py.typed" in names and "webmini/serving/gunicorn_conf.py" in names


def test_sdist_ships_no_half_test_suite(dist):
    sdist, _ = dist
    with tarfile.open(sdist) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    assert "LICENSE" in names and "README.md" in names and "webmini/app.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/"))]


NEWCOMER_APP = """
import webmini as web

class Hello:
    def GET(self):
        return {"hello": web.input(name="world").name}

app = web.application(("/", "Hello"), globals())
"""


def test_fresh_virtualenv_without_extras(dist, tmp_path):
    _, wheel = dist
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (tmp_path / "app.py").write_text(NEWCOMER_APP)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)

    got = run(str(env_dir / "bin" / "webmini"), "--version")
    assert got.returncode == 0 and got.stdout.startswith("webmini "), got.stderr
    got = run(str(env_dir / "bin" / "webmini"), "check", "app:app")
    assert got.returncode == 0, got.stdout + got.stderr
    got = run(str(py), "-c", textwrap.dedent("""
        from webmini.testing import TestClient
        import app
        r = TestClient(app.app).get("/", params={"name": "ann"})
        assert r.json() == {"hello": "ann"}, r.text
        import webmini.serving.devserver, webmini.serving.green  # the dev server's needs
        print("ok")
    """))
    assert got.stdout.strip() == "ok", got.stderr
