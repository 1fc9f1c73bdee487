"""What `pip install webmini` gets: metadata, sdist contents, and a fresh virtualenv without extras."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


#: What goes into the sdist and the wheel: the cache key hashes these.
BUILD_INPUTS = ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "webmini")


def _source_digest() -> str:
    """A hash of every file the build reads (names and contents)."""
    h = hashlib.sha256()
    for name in BUILD_INPUTS:
        top = ROOT / name
        files = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else [top]
        for path in files:
            if "__pycache__" in path.parts:
                continue
            h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:24]


@pytest.fixture(scope="module")
def dist() -> tuple[Path, Path]:
    """The sdist and the wheel, built once per source tree and shared by every Python.

    webmini is pure Python (a ``py3-none-any`` wheel), so the Pythons of one
    ``scripts/test.sh`` run (which may run at the same time) use one build: the
    first builds under a lock into a temp dir named by the source hash, the
    others wait and reuse it. Any edit to a build input makes a new one.
    """
    cache = Path(tempfile.gettempdir()) / "webmini-dist"
    cache.mkdir(exist_ok=True)
    out = cache / _source_digest()
    with open(cache / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (out / "done").exists():
                shutil.rmtree(out, ignore_errors=True)
                proc = subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel",
                                       "--outdir", str(out), str(ROOT)],
                                      capture_output=True, text=True, timeout=600)
                assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
                (out / "done").touch()
            for old in cache.iterdir():  # builds of trees a day old or more
                if old.is_dir() and old != out and time.time() - old.stat().st_mtime > 86400:
                    shutil.rmtree(old, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
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
    assert "webmini/serving/configs/uwsgi.ini" in names
    assert "webmini/serving/configs/nginx.conf" in names


def test_sdist_ships_no_half_test_suite(dist):
    sdist, _ = dist
    with tarfile.open(sdist) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    assert "LICENSE" in names and "README.md" in names and "webmini/app.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/"))]
    assert "webmini/serving/configs/uwsgi.ini" in names
    assert "webmini/serving/configs/nginx.conf" in names


def test_the_repository_configs_are_the_shipped_ones():
    """uwsgi.ini and examples/nginx.conf are the files `webmini config` prints: no drift."""
    from webmini.cli import config_text

    assert (ROOT / "uwsgi.ini").read_text() == config_text("uwsgi")
    assert (ROOT / "examples" / "nginx.conf").read_text() == config_text("nginx")
    assert config_text("gunicorn") == (ROOT / "webmini/serving/gunicorn_conf.py").read_text()
    # gunicorn.conf.py in the repository is a one-line include of that module
    assert "from webmini.serving.gunicorn_conf import *" in (ROOT / "gunicorn.conf.py").read_text()


def test_webmini_config_prints_each_file():
    for name, first in (("uwsgi", "; webmini's"), ("gunicorn", '"""webmini'), ("nginx", "# nginx")):
        proc = subprocess.run([sys.executable, "-m", "webmini", "config", name],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.startswith(first), proc.stderr
    proc = subprocess.run([sys.executable, "-m", "webmini", "config", "apache"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


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
    # No pip of its own (ensurepip is the slowest step): this venv's pip installs into it.
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                           str(wheel)],
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


_SHELL = re.compile(r"<!--\s*readme-shell\s*-->\n```sh\n(.*?)^```", re.M | re.S)
_SERVERS = ("webmini run ", "uwsgi --ini ", "gunicorn ")
README_APP_START = "```python\nimport webmini as web\n"


def readme_shell_blocks() -> list[str]:
    """The README's shell blocks a newcomer follows (marked ``<!-- readme-shell -->``), in order."""
    return _SHELL.findall((ROOT / "README.md").read_text())


def _quick_start_app() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(README_APP_START, text.index("## Quick start")) + len("```python\n")
    return text[start:text.index("```", start)]


def _script(block: str) -> str:
    """A block as bash: each line as written; a server line runs in the background until the
    next lines ran (the port answered first), then it is stopped (SIGTERM) and waited for."""
    out = []
    servers = 0
    for line in block.splitlines():
        command = line.strip()
        if re.sub(r"^(\w+=\S+ )*", "", command).startswith(_SERVERS):
            servers += 1
            out += ["{", line, f"}} > server{servers}.log 2>&1 &", f"SERVER{servers}=$!",
                    "for i in $(seq 300); do curl -s -o /dev/null localhost:8080/ && break; "
                    f"kill -0 $SERVER{servers} || {{ cat server{servers}.log; exit 1; }}; "
                    "sleep 0.2; done",
                    "echo " + shlex.quote(f"# served by: {command}")]
        else:
            out.append(line)
    for n in range(servers, 0, -1):
        out.append(f"pkill -TERM -P $SERVER{n}; wait $SERVER{n} || true; echo '# stopped'")
    return "\n".join(out)


@pytest.mark.uwsgi
@pytest.mark.gunicorn
@pytest.mark.slow
def test_readme_followed_verbatim_from_a_fresh_virtualenv(dist, tmp_path):
    """The README's commands for a pip user, as written: venv, the wheel with its extras,
    `webmini config uwsgi`, the quick-start app under `webmini run`, uWSGI and gunicorn."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("needs root and unshare: the README's servers bind 127.0.0.1:8080, which "
                    "only a private network namespace guarantees free")
    _, wheel = dist
    blocks = readme_shell_blocks()
    assert len(blocks) == 4, blocks
    (tmp_path / "app.py").write_text(_quick_start_app())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["WEBMINI_ALLOW_ROOT"] = "1"  # the test runs as root; uwsgi.ini refuses root otherwise
    # the published name, installed from the wheel just built
    install = re.sub(r'"webmini(\[[^\]]*\])?"', lambda m: f'"{wheel}{m.group(1) or ""}"',
                     blocks[0])
    proc = subprocess.run(["bash", "-ec", install], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "uwsgi.ini").read_text() == (ROOT / "uwsgi.ini").read_text()
    serve = "\n".join(["ip link set lo up", ". .venv/bin/activate"]
                      + [_script(re.sub(r'"webmini(\[[^\]]*\])?"',
                                        lambda m: f'"{wheel}{m.group(1) or ""}"', b))
                         for b in blocks[1:]])
    proc = subprocess.run(["unshare", "--net", "bash", "-ec", serve], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    # the quick start's curl, then each server's answer to `curl -s localhost:8080/`
    assert '{"user":1,"post":2,"fields":["a"]}' in out, out
    assert "webmini check: no blocking module loaded by app:app" in out, out
    assert out.count("Hello, world!") == 2, out
    for server in ("webmini run app:app", "uwsgi --ini uwsgi.ini", "gunicorn -c python:"):
        assert f"# served by: {server}" in out or any(
            line.startswith("# served by:") and server in line for line in out.splitlines()), out
    assert out.count("# stopped") == 3, out
