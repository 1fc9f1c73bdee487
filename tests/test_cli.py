"""The `webmini` command: `run` (patches before importing the app) and `check`."""

import http.client
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from support import free_port
from support.servers import http_get

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _webmini(args, cwd, timeout=60):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cwd), REPO]))
    env.pop("WEBMINI_LISTEN_FD", None)
    return subprocess.run([sys.executable, "-m", "webmini.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _get(port, path="/"):
    reply = http_get(port, path)
    return reply.status, reply.body


CLEAN_APP = """
import pymysql  # pure Python: cooperative once patched
import webmini as web

class Hello:
    def GET(self):
        return "hello"

app = web.application(("/", "Hello"), globals())
"""

C_DRIVER_APP = """
import MySQLdb  # mysqlclient: a C extension, blocks the whole hub
import webmini as web

app = web.application((), globals())
"""


def test_check_passes_a_clean_app(tmp_path):
    (tmp_path / "cleanapp.py").write_text(CLEAN_APP)
    proc = _webmini(["check", "cleanapp:app"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no blocking module" in proc.stdout


def test_check_fails_on_a_c_driver_and_names_the_replacement(tmp_path):
    (tmp_path / "capp.py").write_text(C_DRIVER_APP)
    proc = _webmini(["check", "capp:app"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "MySQLdb (mysqlclient) blocks the event loop" in proc.stdout
    assert "pymysql through webmini.stores.mysql" in proc.stdout


def test_console_script_is_installed(tmp_path):
    script = Path(sys.executable).parent / "webmini"
    (tmp_path / "cleanapp.py").write_text(CLEAN_APP)
    proc = subprocess.run([str(script), "check", "cleanapp:app"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_with_a_bad_target_exits_with_an_error(tmp_path):
    proc = _webmini(["run", "nosuchmodule:app", "--port", "0"], tmp_path)
    assert proc.returncode != 0
    assert "nosuchmodule" in proc.stderr
    (tmp_path / "cleanapp.py").write_text(CLEAN_APP)
    proc = _webmini(["run", "cleanapp:nothere", "--port", "0"], tmp_path)
    assert proc.returncode != 0 and "no attribute 'nothere'" in proc.stderr


PATCH_ORDER_APP = """
import socket, threading
from gevent import monkey

PATCHED_AT_IMPORT = monkey.is_module_patched("socket") and monkey.is_module_patched("threading")

def app(environ, start_response):
    body = repr((PATCHED_AT_IMPORT, socket.socket.__module__)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def test_run_patches_before_importing_the_app(webmini_run, tmp_path):
    (tmp_path / "orderapp.py").write_text(PATCH_ORDER_APP)
    server = webmini_run("orderapp:app")
    assert _get(server.port) == (200, b"(True, 'gevent._socket3')")
    assert "LatePatchWarning" not in server.output()
    assert "gevent patching came late" not in server.output()


SPIN_APP = """
import time
import webmini as web

class Spin:
    def GET(self):
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
        return "spun"

app = web.application(("/spin", "Spin"), globals())
"""


def test_run_debug_turns_the_loop_monitor_on(webmini_run, tmp_path):
    (tmp_path / "spinapp.py").write_text(SPIN_APP)
    plain = webmini_run("spinapp:app")
    debug = webmini_run("spinapp:app", "--debug")
    assert _get(plain.port, "/spin") == (200, b"spun")
    assert _get(debug.port, "/spin") == (200, b"spun")
    out = debug.wait_for_output("blocked the event loop")
    assert "GET /spin in spinapp.Spin.GET blocked the event loop for" in out, out
    assert "blocked the event loop" not in plain.output()


def test_application_run_serves_with_the_dev_server(tmp_path):
    script = tmp_path / "runme.py"
    script.write_text(textwrap.dedent("""
        import sys
        import webmini as web

        class Hello:
            def GET(self):
                return "ran"

        if __name__ == "__main__":
            web.application(("/", "Hello"), globals()).run()
    """))
    port = free_port()  # web.py's argv form takes the port
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, str(script), f"127.0.0.1:{port}"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert f"webmini: serving on http://127.0.0.1:{port}" in line, line
        assert _get(port) == (200, b"ran")
    finally:
        proc.terminate()
        proc.wait(10)


TYPO_APP = """
import webmini as web

urls = ("/", "Indx", "users/(\\\\d+)", "User")

class Index:
    def GET(self):
        return "hi"

class User:
    def GET(self, uid):
        return uid

app = web.application(urls, globals())
no_globals = web.application(urls)
"""


def test_check_resolves_the_url_table_with_did_you_mean(tmp_path):
    (tmp_path / "typoapp.py").write_text(TYPO_APP)
    proc = _webmini(["check", "typoapp:app"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "'/' -> 'Indx', which is not defined; did you mean 'Index'?" in proc.stdout
    assert "'users/(\\\\d+)' does not start with '/'" in proc.stdout
    proc = _webmini(["check", "typoapp:no_globals"], tmp_path)
    assert proc.returncode == 1
    assert "web.application(urls, globals())" in proc.stdout


def test_check_passes_a_good_table(tmp_path):
    (tmp_path / "cleanapp.py").write_text(CLEAN_APP)
    proc = _webmini(["check", "cleanapp:app"], tmp_path)
    assert "URL table of cleanapp:app: 1 route(s) OK" in proc.stdout


def test_a_bad_regex_names_its_route(tmp_path):
    (tmp_path / "rxapp.py").write_text(
        "import webmini as web\nclass X: pass\napp = web.application(('/(', 'X'), globals())\n")
    proc = _webmini(["check", "rxapp:app"], tmp_path)
    assert proc.returncode != 0
    assert "bad regex in the URL table: '/(' -> 'X'" in proc.stderr


def test_run_with_a_file_path_suggests_module_colon_app(tmp_path):
    (tmp_path / "cleanapp.py").write_text(CLEAN_APP)
    proc = _webmini(["run", "cleanapp.py"], tmp_path)
    assert proc.returncode != 0
    assert "webmini run cleanapp:app" in proc.stderr


def test_version_and_python_dash_m(tmp_path):
    import webmini

    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-m", "webmini", "--version"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"webmini {webmini.__version__}"
    (tmp_path / "cleanapp.py").write_text(CLEAN_APP)
    proc = subprocess.run([sys.executable, "-m", "webmini", "check", "cleanapp:app"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_refuses_an_app_whose_table_names_nothing(tmp_path):
    (tmp_path / "typoapp.py").write_text(TYPO_APP)
    proc = _webmini(["run", "typoapp:app", "--port", "0"], tmp_path)
    assert proc.returncode != 0
    assert "did you mean 'Index'?" in proc.stderr and "Traceback" not in proc.stderr


OVERLAP_APP = """
from time import sleep          # imported before app.run() could patch
import threading
import webmini as web

state = {"now": 0, "most": 0}
lock = threading.Lock()

class Wait:
    def GET(self):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        sleep(0.5)
        with lock:
            state["now"] -= 1
        return "done"

class Most:
    def GET(self):
        return str(state["most"])

app = web.application(("/wait", "Wait", "/most", "Most"), globals())

if __name__ == "__main__":
    app.run()
"""


def _serve_script(script, port, *flags):
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("WEBMINI_LISTEN_FD", None)
    proc = subprocess.Popen([sys.executable, *flags, str(script), f"127.0.0.1:{port}"],
                            cwd=script.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    # the same process (re-run in place, patched first)
    assert f"webmini: serving on http://127.0.0.1:{port} (pid {proc.pid})" in line, line
    return proc


def test_python_app_py_serves_requests_concurrently(tmp_path):
    """`python app.py` with `from time import sleep` at the top: three requests overlap
    (the handler counts them in flight), as under `webmini run`, same pid."""
    import threading

    script = tmp_path / "overlap.py"
    script.write_text(OVERLAP_APP)
    port = free_port()
    proc = _serve_script(script, port)
    try:
        results = []
        threads = [threading.Thread(target=lambda: results.append(_get(port, "/wait")))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [(200, b"done")] * 3
        assert _get(port, "/most") == (200, b"3")
    finally:
        proc.terminate()
        proc.wait(10)


def test_python_dash_m_app_serves_requests_concurrently(tmp_path):
    import threading

    (tmp_path / "overlapm.py").write_text(OVERLAP_APP)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, "-m", "overlapm", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert f"serving on http://127.0.0.1:{port} (pid {proc.pid})" in line, line
        threads = [threading.Thread(target=_get, args=(port, "/wait")) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert _get(port, "/most") == (200, b"3")
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_missing_module_is_one_line_exit_2(tmp_path):
    for command in (["check", "nosuch:app"], ["run", "nosuch:app", "--port", "0"],
                    ["routes", "nosuch:app"]):
        proc = _webmini(command, tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            "webmini: no module named 'nosuch' (from 'nosuch:app'): run from the directory "
            "that holds it, or put that directory on PYTHONPATH"], proc.stderr


def test_an_odd_url_table_names_the_entry_in_one_line_exit_2(tmp_path):
    (tmp_path / "oddlast.py").write_text(
        "import webmini as web\nclass A:\n    def GET(self): return 'a'\n"
        "app = web.application(('/', 'A', '/b'), globals())\n")
    (tmp_path / "oddmid.py").write_text(
        "import webmini as web\nclass A:\n    def GET(self): return 'a'\n"
        "app = web.application(('/', 'A', '/b', '/c', 'A'), globals())\n")
    proc = _webmini(["check", "oddlast:app"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "webmini: the URL table needs (pattern, target) pairs: item 3 ('/b'), the last, has no "
        "target (in 'oddlast')"], proc.stderr
    proc = _webmini(["run", "oddmid:app", "--port", "0"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "webmini: the URL table needs (pattern, target) pairs: item 3 ('/b') has no target: it "
        "is followed by the pattern '/c' (in 'oddmid')"], proc.stderr


def test_a_missing_dependency_of_the_app_keeps_its_traceback(tmp_path):
    (tmp_path / "baddep.py").write_text("import nosuchdep\n")
    proc = _webmini(["check", "baddep:app"], tmp_path)
    assert proc.returncode == 1 and "No module named 'nosuchdep'" in proc.stderr


ROUTES_APP = r"""
import webmini as web

class Users:
    def GET(self): return "u"
    def POST(self): return "p"

class One:
    def GET(self, uid): return uid

admin = web.application(("/stats", "Users"), globals())
app = web.application((
    "/users", "Users",
    r"/users/(\d+)", "One",
    "/old/(.*)", r"redirect /new/\1",
    "/admin", admin,
), globals())
"""


def test_routes_lists_pattern_handler_methods(tmp_path):
    (tmp_path / "routesapp.py").write_text(ROUTES_APP)
    proc = _webmini(["routes", "routesapp:app"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert rows[0] == ["Pattern", "Handler", "Methods"]
    assert rows[2:] == [
        ["/users", "routesapp.Users", "GET,HEAD,POST,OPTIONS"],
        [r"/users/(\d+)", "routesapp.One", "GET,HEAD,OPTIONS"],
        ["/old/(.*)", "redirect", r"/new/\1", "*"],
        ["/admin/stats", "routesapp.Users", "GET,HEAD,POST,OPTIONS"],
    ]


ASYNC_APP = """
import webmini as web

class Fine:
    def GET(self): return "ok"

class Coro:
    async def GET(self): return "never"

app = web.application(("/", "Fine", "/coro", "Coro"), globals())
"""


def test_an_async_handler_passes_check_and_serves(tmp_path):
    (tmp_path / "asyncapp.py").write_text(ASYNC_APP)
    proc = _webmini(["check", "asyncapp:app"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "async def handler(s)" in proc.stdout and "Coro.GET" in proc.stdout
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]))
    code = ("from gevent import monkey; monkey.patch_all()\n"
            "import asyncapp\nfrom webmini.testing import TestClient\n"
            "print(TestClient(asyncapp.app).get('/coro').text)")
    proc = subprocess.run([sys.executable, "-c", code],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "never", proc.stderr


def test_the_loop_monitor_line_carries_the_request_id(webmini_run, tmp_path):
    (tmp_path / "spinapp.py").write_text(SPIN_APP)
    debug = webmini_run("spinapp:app", "--debug")
    conn = http.client.HTTPConnection("127.0.0.1", debug.port, timeout=10)
    conn.request("GET", "/spin", headers={"X-Request-ID": "spin-42"})
    assert conn.getresponse().read() == b"spun"
    conn.close()
    out = debug.wait_for_output("blocked the event loop")
    line = next(x for x in out.splitlines() if "blocked the event loop" in x)
    assert "GET /spin in spinapp.Spin.GET" in line and line.endswith("[rid spin-42]"), line


RELOAD_APP = """
import webmini as web

class Hello:
    def GET(self):
        return "{version}"

app = web.application(("/", "Hello"), globals())
"""


def _get_until(port, wanted, timeout=30.0, save=None):
    """GET / until ``wanted(answer)``; ``save`` (the edit awaited) is done again every 2 s
    meanwhile, in case the reloader's watch was not armed yet when it was first made."""
    import time

    deadline = time.monotonic() + timeout
    next_save = time.monotonic() + 2.0
    got = None
    while time.monotonic() < deadline:
        try:
            got = _get(port)
        except (ConnectionError, http.client.HTTPException, TimeoutError) as exc:
            got = exc
        if isinstance(got, tuple) and wanted(got):
            return got
        if save is not None and time.monotonic() >= next_save:
            save()
            next_save = time.monotonic() + 2.0
        time.sleep(0.2)
    raise AssertionError(f"last answer: {got!r}")


def test_reload_answers_500_while_the_app_is_broken_then_recovers(webmini_run, tmp_path):
    import time

    module = tmp_path / "fragile.py"
    module.write_text(RELOAD_APP.format(version="v1"))
    for flags, shows in (((), "see the server's log"), (("--debug",), "SyntaxError")):
        module.write_text(RELOAD_APP.format(version="v1"))
        server = webmini_run("fragile:app", "--reload", *flags)
        assert _get(server.port) == (200, b"v1")
        time.sleep(0.5)  # let the watcher settle
        def save_broken() -> None:
            module.write_text("class Broken(:\n")  # a syntax error saved

        def save_v2() -> None:
            module.write_text(RELOAD_APP.format(version="v2"))  # the next good save

        save_broken()
        # never a hang (each GET's timeout: 10 s)
        status, body = _get_until(server.port, lambda r: r[0] == 500, save=save_broken)
        assert shows.encode() in body, body
        if not flags:
            assert b"SyntaxError" not in body and b"fragile.py" not in body
        save_v2()
        assert _get_until(server.port, lambda r: r[0] == 200, save=save_v2) == (200, b"v2"), \
            server.output()
        server.stop()
