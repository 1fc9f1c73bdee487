"""Fixtures: real HTTP servers (uWSGI with uwsgi.ini, nginx in front, ``webmini run``).

The runners themselves live in the top-level ``localservices`` package,
shared with the benchmarks and the local cluster; this module wraps them in
factory fixtures that stop what they started: ``start_uwsgi``,
``uwsgi_hello`` (one per module), ``start_todo`` (the todo example under
uWSGI), ``start_nginx``, ``webmini_run``. Tests may import the runners from
here too (``from support.servers import UwsgiServer``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localservices import Reply, free_port, http_get, stop_process
from localservices.devserver import DevServer
from localservices.nginx import NginxServer, nginx_site
from localservices.todo import todo_server
from localservices.uwsgi import ROOT, UWSGI_INI, UwsgiServer, uwsgi_binary
from support import started_servers

__all__ = [
    "ROOT", "UWSGI_INI", "NginxServer", "Reply", "UwsgiServer", "WebminiRunProcess",
    "free_port", "http_get", "nginx_site", "stop_process", "uwsgi_binary", "write_probe_app",
]

#: the dev-server runner under its older name
WebminiRunProcess = DevServer

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


@pytest.fixture
def start_uwsgi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., UwsgiServer]]:
    """Factory: ``start_uwsgi(**UwsgiServer options)`` -> a ready server, stopped after the test."""
    def make(**kw: Any) -> UwsgiServer:
        if not os.access(uwsgi_binary(), os.X_OK):
            pytest.fail(f"uwsgi not found ({uwsgi_binary()}): pip install -e '.[uwsgi]'")
        return UwsgiServer(tmp_path_factory.mktemp("uwsgi"), **kw)

    yield from started_servers(make)


@pytest.fixture(scope="module")
def uwsgi_hello(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UwsgiServer]:
    """One uWSGI (uwsgi.ini, 2 workers) serving examples/hello.py, shared by a test module."""
    server = UwsgiServer(tmp_path_factory.mktemp("uwsgi-hello"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


#: the todo example's session secret in tests
TODO_SECRET = "todo-test-secret-0123456789abcdef"


@pytest.fixture
def start_todo(mariadb: Any, memcached: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., UwsgiServer]]:
    """Factory: the todo example under uwsgi.ini on this session's MariaDB and memcached.

    Its table is dropped first (the app creates it); ``start_todo(**options)``
    takes :class:`UwsgiServer` options (``args=[...]``) and returns it ready.
    """
    def make(**options: Any) -> UwsgiServer:
        conn = mariadb.root_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {mariadb.database}.todos")
        finally:
            conn.close()
        return todo_server(tmp_path_factory.mktemp("todo"), mysql_url=mariadb.url,
                           memcached=memcached.addresses, secret=TODO_SECRET, **options)

    yield from started_servers(make)


@pytest.fixture
def start_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], NginxServer]]:
    """Factory: ``start_nginx(<uwsgi socket path>)`` -> a running nginx, stopped after."""
    yield from started_servers(
        lambda uwsgi_socket: NginxServer(tmp_path_factory.mktemp("nginx"), uwsgi_socket))


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
