"""Fixtures: real HTTP servers (uWSGI with uwsgi.ini, nginx in front) on free loopback ports.

Sections:

* helpers shared by every server (free ports, a minimal HTTP client);
* uWSGI: ``UwsgiServer`` runs the repository's ``uwsgi.ini`` with its
  addresses overridden through the environment, in a temp dir;
  ``start_uwsgi`` (factory fixture) starts as many as a test needs and stops
  them afterwards;
* nginx: ``NginxServer`` runs a private nginx (generated ``nginx.conf``
  wrapping ``examples/nginx.conf``) in front of a uWSGI socket;
  ``start_nginx`` (factory fixture).

These helpers are plain functions and classes too, so tests can import them
(``from support.servers import UwsgiServer``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from localservices import free_port

ROOT = Path(__file__).resolve().parent.parent.parent

# ======================================================================
# Shared helpers
# ======================================================================


class Reply:
    """One HTTP response: ``status`` (int), ``headers`` (lower-case names), ``body``."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def http_get(
    port: int,
    path: str = "/",
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Reply:
    """Send one request to ``127.0.0.1:port`` over a new connection; return the reply.

    Cooperative under gevent (the suite patches ``socket``), so many of these
    can run at once in greenlets.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Send ``sig`` to a still-running process; SIGKILL it if it outlives ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


# ======================================================================
# uWSGI
# ======================================================================

UWSGI_INI = ROOT / "uwsgi.ini"


def uwsgi_binary() -> str:
    """Path of the ``uwsgi`` executable: next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "uwsgi"
    if beside.exists():
        return str(beside)
    venv = ROOT / ".venv" / "bin" / "uwsgi"
    if venv.exists():
        return str(venv)
    return shutil.which("uwsgi") or "uwsgi"


class UwsgiServer:
    """uWSGI started with ``uwsgi.ini`` on free loopback ports, files in ``workdir``.

    ``env`` adds/overrides environment variables (``WEBMINI_*`` settings of
    uwsgi.ini); ``args`` are extra command-line options appended after
    ``--ini`` (they override the file's values for plain options).
    """

    def __init__(
        self,
        workdir: Path,
        module: str = "examples.hello:application",
        processes: int = 2,
        gevent: int = 1000,
        listen: int | None = None,
        ini: Path = UWSGI_INI,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        name: str = "uwsgi",
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.module = module
        self.processes = processes
        self.gevent = gevent
        self.listen = listen
        self.ini = Path(ini)
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.name = name
        self.http_port = 0
        self.socket_port = 0
        self.stats_port = 0
        self.touch_reload = self.workdir / f"{name}.reload"
        # A unix socket, as shipped (uwsgi.ini refuses TCP for the uwsgi protocol).
        self.socket_path = self.workdir / f"{name}.sock"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._seen_pids: set[int] = set()

    # -- addresses ----------------------------------------------------
    @property
    def http_address(self) -> str:
        """``127.0.0.1:<port>`` of the HTTP socket (``http-socket``)."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def socket_address(self) -> str:
        """Path of the uwsgi-protocol unix socket (for nginx: ``unix:<path>``)."""
        return str(self.socket_path)

    @property
    def pid(self) -> int:
        """The master's process id."""
        assert self.proc is not None, "uWSGI is not running"
        return self.proc.pid

    def environment(self) -> dict[str, str]:
        """The environment uWSGI is started with (addresses, module, sizes)."""
        env = dict(os.environ)
        # The test process's own gevent/pytest settings must not leak in.
        env.pop("PYTHONPATH", None)
        env.update({
            "WEBMINI_MODULE": self.module,
            "WEBMINI_HTTP": self.http_address,
            "WEBMINI_SOCKET": self.socket_address,
            # The socket's group: the test process's own (nginx runs as it).
            "WEBMINI_SOCKET_GROUP": str(os.getgid()),
            "WEBMINI_STATS": f"127.0.0.1:{self.stats_port}",
            "WEBMINI_PROCESSES": str(self.processes),
            "WEBMINI_GEVENT": str(self.gevent),
            "WEBMINI_TOUCH_RELOAD": str(self.touch_reload),
        })
        if self.listen is not None:
            env["WEBMINI_LISTEN"] = str(self.listen)
        if os.geteuid() == 0:
            # uwsgi.ini refuses to run its workers as root unless told; the
            # suite runs as root in CI and serves apps from root-only temp
            # dirs, so it says so here (tests/test_security_uwsgi.py checks
            # the refusal and the privilege drop themselves).
            env["WEBMINI_ALLOW_ROOT"] = "1"
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """The command line: ``uwsgi --ini uwsgi.ini`` plus extra options."""
        return [uwsgi_binary(), "--ini", str(self.ini), *self.args]

    # -- life cycle -----------------------------------------------------
    def start(self, timeout: float = 30.0) -> UwsgiServer:
        """Start uWSGI and wait until every worker has loaded the app; fail the test if not."""
        last = ""
        for _ in range(3):  # a port picked free may be taken before uWSGI binds it
            self.http_port, self.socket_port, self.stats_port = (
                free_port(), free_port(), free_port())
            with open(self.log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    self.command(), cwd=self.workdir, env=self.environment(),
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            if self.wait_ready(timeout):
                return self
            last = self.log_tail()
            self.stop()
            if "Address already in use" not in last:
                break
        pytest.fail(f"uWSGI ({' '.join(self.command())}) did not become ready:\n{last}")

    def wait_ready(self, timeout: float = 30.0, exclude_pids: Sequence[int] = ()) -> bool:
        """Wait until ``processes`` workers (none in ``exclude_pids``) have the app loaded."""
        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise _Exited
            try:
                workers = self.stats()["workers"]
            except (OSError, ValueError, KeyError):
                return False
            live = [w for w in workers
                    if w.get("pid") and w["pid"] not in exclude_pids and w.get("apps")]
            return len(live) >= self.processes and self._answers()

        try:
            return _wait_until(ready, timeout)
        except _Exited:
            return False

    def _answers(self) -> bool:
        try:
            http_get(self.http_port, "/", timeout=2.0)
            return True
        except OSError:
            return False

    @property
    def running(self) -> bool:
        """True while the master process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the master (die-on-term: stop), SIGKILL the group if it lingers."""
        if self.proc is None:
            return
        stop_process(self.proc, signal.SIGTERM, timeout)
        self._kill_orphans()
        self.proc = None

    def _kill_orphans(self) -> None:
        # A worker outlives a master killed with SIGKILL: kill the workers
        # this server reported (and only those still running uWSGI).
        for pid in self._seen_pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"uwsgi" in cmdline.lower() or b"webmini" in cmdline:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self._seen_pids.clear()

    def reload(self) -> None:
        """Graceful reload: SIGHUP to the master."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def touch(self) -> None:
        """Graceful reload: touch the ``touch-reload`` file."""
        self.touch_reload.touch()
        now = time.time()
        os.utime(self.touch_reload, (now, now))

    # -- introspection ------------------------------------------------------
    def stats(self, timeout: float = 2.0) -> dict[str, Any]:
        """uWSGI's JSON stats (``stats`` socket)."""
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=timeout) as s:
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        result: dict[str, Any] = json.loads(b"".join(chunks))
        self._seen_pids.update(w["pid"] for w in result.get("workers", ()) if w.get("pid"))
        return result

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers, from the stats server."""
        return [w["pid"] for w in self.stats()["workers"] if w.get("pid")]

    def get(self, path: str = "/", timeout: float = 10.0, **kw: Any) -> Reply:
        """A request to the HTTP socket."""
        return http_get(self.http_port, path, timeout=timeout, **kw)

    def log_text(self) -> str:
        """Everything uWSGI logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 3000) -> str:
        """The end of uWSGI's log (for failure messages)."""
        return self.log_text()[-chars:]


PROBE_APP = """\
\"\"\"A probe app for server tests: what the server passed in, and how it was set up.\"\"\"
import os

from gevent import monkey

# Recorded while this module is imported, i.e. before any request.
PATCHED_AT_IMPORT = {name: monkey.is_module_patched(name) for name in ("socket", "threading", "time")}

import webmini as web

urls = ("/env", "Env", "/setup", "Setup")


class Env:
    def GET(self):
        env = {k: v for k, v in web.ctx.env.items() if isinstance(v, str)}
        return {"env": env, "ip": web.ctx.ip, "host": web.ctx.host, "path": web.ctx.path,
                "query": web.ctx.query, "method": web.ctx.method, "input": dict(web.input())}

    def POST(self):
        return {"body": web.data().decode(), "length": len(web.data())}


class Setup:
    def GET(self):
        return {"patched_at_import": PATCHED_AT_IMPORT, "pid": os.getpid()}


app = web.application(urls, globals())
application = app.wsgifunc()
"""


def write_probe_app(directory: Path, name: str = "probe_app") -> dict[str, str]:
    """Write the probe app as ``<directory>/<name>.py``; return the env to serve it.

    The result sets ``WEBMINI_MODULE`` and ``PYTHONPATH`` for ``UwsgiServer(env=...)``.
    """
    (Path(directory) / f"{name}.py").write_text(PROBE_APP)
    return {"WEBMINI_MODULE": f"{name}:application", "PYTHONPATH": str(directory)}


class _Exited(Exception):
    """The server process exited while we waited for it."""


@pytest.fixture
def start_uwsgi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., UwsgiServer]]:
    """Factory: ``start_uwsgi(**UwsgiServer options)`` -> a ready server, stopped after the test."""
    servers: list[UwsgiServer] = []

    def start(**kw: Any) -> UwsgiServer:
        if not os.access(uwsgi_binary(), os.X_OK):
            pytest.fail(f"uwsgi not found ({uwsgi_binary()}): pip install -e '.[uwsgi]'")
        server = UwsgiServer(tmp_path_factory.mktemp("uwsgi"), **kw)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def uwsgi_hello(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UwsgiServer]:
    """One uWSGI (uwsgi.ini, 2 workers) serving examples/hello.py, shared by a test module."""
    server = UwsgiServer(tmp_path_factory.mktemp("uwsgi-hello"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


# ======================================================================
# nginx
# ======================================================================

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_SITE = ROOT / "examples" / "nginx.conf"
UWSGI_PARAMS = Path("/etc/nginx/uwsgi_params")

_MAIN_CONF = """\
# Generated for one test run: private prefix, files and ports.
user root;
worker_processes 1;
error_log {tmp}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


def nginx_site(uwsgi_socket: str, port: int, source: Path = NGINX_SITE) -> str:
    """``examples/nginx.conf`` with its upstream and listen addresses rewritten for a test.

    ``uwsgi_socket`` is a unix socket path (or ``host:port``).
    """
    text = source.read_text()
    target = f"unix:{uwsgi_socket}" if uwsgi_socket.startswith("/") else uwsgi_socket
    text, n_up = re.subn(r"server unix:/run/webmini/uwsgi\.sock;", f"server {target};", text)
    text, n_listen = re.subn(r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{port};", text,
                             flags=re.M)
    text = re.sub(r"^\s*listen \[::\]:80;\n", "", text, flags=re.M)
    if n_up != 1 or n_listen != 1:
        pytest.fail(f"{source}: expected one 'server unix:/run/webmini/uwsgi.sock;' "
                    "and one 'listen 80;'")
    return text


class NginxServer:
    """A private nginx in ``workdir`` serving ``examples/nginx.conf`` in front of ``uwsgi_socket``."""

    def __init__(self, workdir: Path, uwsgi_socket: str) -> None:
        self.workdir = Path(workdir)
        self.uwsgi_socket = uwsgi_socket
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        """Write nginx.conf, site.conf and uwsgi_params into the workdir; return nginx.conf."""
        tmp = self.workdir
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / sub).mkdir(exist_ok=True)
        if not UWSGI_PARAMS.exists():
            pytest.fail(f"{UWSGI_PARAMS} missing: apt-get install nginx-light")
        shutil.copy(UWSGI_PARAMS, tmp / "uwsgi_params")
        (tmp / "site.conf").write_text(nginx_site(self.uwsgi_socket, self.port))
        conf = tmp / "nginx.conf"
        conf.write_text(_MAIN_CONF.format(tmp=tmp))
        return conf

    def start(self, timeout: float = 10.0) -> NginxServer:
        """Check the config (``nginx -t``), start nginx in the foreground, wait for its port."""
        if not os.access(NGINX, os.X_OK):
            pytest.fail(f"nginx not found ({NGINX}): apt-get install nginx-light")
        last = ""
        for _ in range(3):
            self.port = free_port()
            conf = self.write_config()
            tmp = str(self.workdir)
            # -e: even the log nginx opens before reading its config stays in tmp.
            base = [NGINX, "-p", tmp, "-e", f"{tmp}/error.log", "-c", str(conf),
                    "-g", f"daemon off; pid {tmp}/nginx.pid;"]
            check = subprocess.run(base + ["-t", "-q"], capture_output=True, text=True)
            if check.returncode != 0:
                pytest.fail(f"nginx -t refused the generated config:\n{check.stderr}")
            with open(self.workdir / "nginx.out", "ab") as out:
                self.proc = subprocess.Popen(base, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            try:
                if _wait_until(self._listening, timeout):
                    return self
            except _Exited:
                pass
            last = self.error_log()
            self.stop()
        pytest.fail(f"nginx did not start:\n{last}")

    def _listening(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise _Exited
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def get(self, path: str = "/", timeout: float = 10.0, **kw: Any) -> Reply:
        """A request to nginx."""
        return http_get(self.port, path, timeout=timeout, **kw)

    def error_log(self) -> str:
        """nginx's error log so far."""
        try:
            return (self.workdir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGQUIT (graceful shutdown), SIGKILL if it lingers."""
        if self.proc is None:
            return
        stop_process(self.proc, signal.SIGQUIT, timeout)
        self.proc = None


@pytest.fixture
def start_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], NginxServer]]:
    """Factory: ``start_nginx(<uwsgi socket path>)`` -> a running nginx, stopped after."""
    servers: list[NginxServer] = []

    def start(uwsgi_socket: str) -> NginxServer:
        server = NginxServer(tmp_path_factory.mktemp("nginx"), uwsgi_socket)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


# ===========================================================================
# Dev-server section (`webmini run`): used by tests/test_devserver.py and
# tests/test_cli.py. Self-contained: it only relies on `pytest` being
# imported at the top of this module; everything else is imported locally.
# ===========================================================================


class WebminiRunProcess:
    """A `webmini run ...` subprocess on a free loopback port (it binds --port 0)."""

    def __init__(self, args, cwd, env=None, timeout=20.0):
        import os as _os
        import subprocess as _subprocess
        import sys as _sys

        self.cwd = str(cwd)
        self.log_path = _os.path.join(self.cwd, f"webmini-run-{id(self)}.log")
        repo = str(ROOT)
        child_env = dict(_os.environ, PYTHONPATH=_os.pathsep.join([self.cwd, repo]),
                         PYTHONUNBUFFERED="1")
        child_env.pop("WEBMINI_LISTEN_FD", None)
        child_env.update(env or {})
        self._log = open(self.log_path, "wb")
        cmd = [_sys.executable, "-m", "webmini.cli", "run", *args]
        if "--port" not in args:
            cmd += ["--port", "0"]
        self.proc = _subprocess.Popen(cmd, cwd=self.cwd, env=child_env, stdout=self._log,
                                      stderr=_subprocess.STDOUT, start_new_session=True)
        self.port = self._wait_for_port(timeout)
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self):
        """Everything the process printed so far (stdout and stderr)."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_output(self, text, timeout=10.0):
        """Wait until `text` appears in the output; return the output."""
        import time as _time

        deadline = _time.monotonic() + timeout
        while _time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            _time.sleep(0.05)
        return self.output()

    def _wait_for_port(self, timeout):
        import re as _re
        import time as _time

        deadline = _time.monotonic() + timeout
        while _time.monotonic() < deadline:
            match = _re.search(r"webmini: serving on http://127\.0\.0\.1:(\d+)", self.output())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                break
            _time.sleep(0.05)
        self.stop()
        pytest.fail(f"`webmini run` did not start:\n{self.output()}")

    def stop(self):
        """SIGTERM the supervisor (it stops its workers); SIGKILL the group if it lingers."""
        import contextlib as _contextlib
        import os as _os
        import signal as _signal
        import subprocess as _subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            with _contextlib.suppress(_subprocess.TimeoutExpired):
                self.proc.wait(10)
        with _contextlib.suppress(ProcessLookupError, PermissionError):
            _os.killpg(self.proc.pid, _signal.SIGKILL)
        self.proc.wait()
        self._log.close()


@pytest.fixture
def webmini_run(tmp_path):
    """Factory: `webmini_run("module:app", "--reload", cwd=..., env=...)` -> WebminiRunProcess."""
    started = []

    def start(*args, cwd=None, env=None, timeout=20.0):
        proc = WebminiRunProcess(list(args), cwd or tmp_path, env=env, timeout=timeout)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
