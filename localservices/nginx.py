"""A private nginx in front of a uWSGI socket, serving ``examples/nginx.conf``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from .client import Reply, http_get
from .process import Service, ServiceError, accepts, free_port

ROOT = Path(__file__).resolve().parent.parent

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
        raise ServiceError(f"{source}: expected one 'server unix:/run/webmini/uwsgi.sock;' "
                    "and one 'listen 80;'")
    return text


class NginxServer(Service):
    """A private nginx in ``workdir``: ``examples/nginx.conf`` in front of ``uwsgi_socket``."""

    program = "nginx"
    stop_signal = signal.SIGQUIT  # graceful shutdown

    def __init__(self, workdir: Path, uwsgi_socket: str) -> None:
        self.workdir = Path(workdir)
        self.uwsgi_socket = uwsgi_socket
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "error.log"

    def write_config(self) -> Path:
        """Write nginx.conf, site.conf and uwsgi_params into the workdir; return nginx.conf."""
        tmp = self.workdir
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / sub).mkdir(exist_ok=True)
        if not UWSGI_PARAMS.exists():
            raise ServiceError(f"{UWSGI_PARAMS} missing: apt-get install nginx-light")
        shutil.copy(UWSGI_PARAMS, tmp / "uwsgi_params")
        (tmp / "site.conf").write_text(nginx_site(self.uwsgi_socket, self.port))
        conf = tmp / "nginx.conf"
        conf.write_text(_MAIN_CONF.format(tmp=tmp))
        return conf

    def start(self, timeout: float = 10.0) -> NginxServer:
        """Check the config (``nginx -t``), start nginx in the foreground, wait for its port."""
        if not os.access(NGINX, os.X_OK):
            raise ServiceError(f"nginx not found ({NGINX}): apt-get install nginx-light")
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
                raise ServiceError(f"nginx -t refused the generated config:\n{check.stderr}")
            with open(self.workdir / "nginx.out", "ab") as out:
                self.proc = subprocess.Popen(base, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            if self.wait_ready(timeout):
                return self
            last = self.error_log()
            self.stop()
        raise ServiceError(f"nginx did not start:\n{last}")

    def ready(self) -> bool:
        """True once nginx accepts connections on its port."""
        return accepts(self.port)

    def get(self, path: str = "/", timeout: float = 10.0, **kw: Any) -> Reply:
        """A request to nginx."""
        return http_get(self.port, path, timeout=timeout, **kw)

    def error_log(self) -> str:
        """nginx's error log so far."""
        return self.log_text()

    def access_log(self) -> str:
        """nginx's access log so far (one line per request nginx parsed)."""
        try:
            return (self.workdir / "access.log").read_text(errors="replace")
        except OSError:
            return ""
