"""Run the deploy/ configuration on one machine: N uWSGI nodes and nginx, on loopback.

The shipped files (deploy/nginx.conf, deploy/node1.ini ...) are copied into a
temp dir with only their addresses and paths rewritten (free loopback ports,
files under the temp dir), so what runs is what ships. Used by the cluster
test and benchmark; usable by hand:

    .venv/bin/python -m localservices.cluster --nodes 3 --db-url mysql://... \\
        --memcached 127.0.0.1:11211 --secret <32 chars>
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .process import Service, ServiceError, accepts, free_port, stop_process
from .uwsgi import read_stats

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
UWSGI = shutil.which("uwsgi", path=str(REPO / ".venv" / "bin")) or shutil.which("uwsgi") or "uwsgi"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class ClusterError(ServiceError):
    """A node or nginx would not start, stop or become ready."""


def _sub_once(pattern: str, repl: str, text: str, what: str, count: int = 1) -> str:
    new, n = re.subn(pattern, repl, text, flags=re.M)
    if n != count:
        raise ClusterError(f"expected {count} {what} in the shipped config, found {n}")
    return new


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``; return (status, body), HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# node-common.ini refuses to run a node as root unless told: a local cluster
# started as root (CI) serves from root-only temp dirs, so it says so.
_ROOT_ENV = {"WEBMINI_ALLOW_ROOT": "1"} if os.geteuid() == 0 else {}


class Node(Service):
    """One uWSGI node (master + workers) started from deploy/node<N>.ini."""

    program = "uWSGI node"
    kill_group = True

    def __init__(self, workdir: Path, index: int, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.index = index
        self.name = f"node{index}"
        self.env = env
        self.uwsgi_port = self.http_port = self.stats_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.ini = workdir / f"{self.name}.ini"
        self.log = self.log_path = workdir / f"{self.name}.log"

    @property
    def address(self) -> str:
        """The uwsgi-protocol address nginx forwards to (a unix socket)."""
        return f"unix:{self.workdir}/{self.name}.sock"

    @property
    def url(self) -> str:
        """Base URL of the node's own HTTP socket."""
        return f"http://127.0.0.1:{self.http_port}"

    def render(self) -> None:
        """Write this node's ini: the shipped node file with new ports and paths."""
        shipped = (DEPLOY / "node1.ini").read_text()  # every node file has the same shape
        shipped = shipped.replace("node1", self.name)
        text = _sub_once(r"^ini = %dnode-common\.ini$", f"ini = {DEPLOY}/node-common.ini",
                         shipped, "ini includes")
        for key, port in (("webmini_http", self.http_port), ("webmini_stats", self.stats_port)):
            text = _sub_once(rf"^set-ph = {key}=127\.0\.0\.1:\d+$",
                             f"set-ph = {key}=127.0.0.1:{port}", text, f"{key} lines")
        text = _sub_once(r"/run/webmini/", f"{self.workdir}/", text, "run paths", count=3)
        # The socket's group: ours, so nginx started by the same user connects.
        text += f"chown-socket = %u:{os.getgid()}\n"
        self.ini.write_text(text)

    def start(self, new_ports: bool = True, timeout: float = 30.0) -> None:
        """Start the node (on fresh ports unless ``new_ports`` is False); wait until ready."""
        for _attempt in range(3):
            if new_ports or not self.uwsgi_port:
                self.uwsgi_port, self.http_port, self.stats_port = (
                    free_port(), free_port(), free_port())
            self.render()
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen(
                    [UWSGI, "--ini", str(self.ini)], stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env={**os.environ, **_ROOT_ENV, **self.env},
                    start_new_session=True)
            if self.wait_ready(timeout):
                return
            self.kill()
            if not new_ports:
                time.sleep(0.5)
        raise ClusterError(f"{self.name} did not become ready:\n{self.log_tail()}")

    def ready(self) -> bool:
        """True once /healthz answers 200."""
        try:
            return http_get(self.url + "/healthz", timeout=2.0)[0] == 200
        except OSError:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the node's log."""
        return super().log_tail(chars) or "(no log)"

    @property
    def master_pid(self) -> int:
        """The uWSGI master's pid."""
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> set[int]:
        """Pids of the workers, from uWSGI's stats server."""
        return {w["pid"] for w in self.stats()["workers"] if w.get("pid")}

    def stats(self) -> dict[str, Any]:
        """uWSGI's stats JSON (the server sends it on connect, then closes)."""
        return read_stats(self.stats_port, timeout=5)

    def crash(self) -> None:
        """SIGKILL the master (no-orphans takes its workers down); wait until all are gone."""
        assert self.proc is not None
        pgid = self.proc.pid  # start_new_session: the master leads its own group
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        raise ClusterError(f"{self.name}: workers outlived their killed master")

    def reload(self) -> None:
        """Graceful reload: SIGHUP to the master."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """Stop the node at once: SIGKILL to its whole process group."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, signal.SIGKILL, 0, group=True)


class Nginx(Service):
    """nginx started from deploy/nginx.conf, every path inside its temp prefix."""

    program = "nginx"
    stop_signal = signal.SIGQUIT  # graceful
    kill_group = True

    def __init__(self, workdir: Path) -> None:
        self.prefix = workdir / "nginx"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.prefix / "error.log"

    @property
    def url(self) -> str:
        """Base URL nginx listens on."""
        return f"http://127.0.0.1:{self.port}"

    def render(self, nodes: Sequence[Node]) -> Path:
        """Write nginx.conf: the shipped file, the upstream listing ``nodes``, a free port."""
        text = (DEPLOY / "nginx.conf").read_text()
        servers = re.findall(r"^\s*server unix:\S+ (.*);$", text, flags=re.M)
        if not servers:
            raise ClusterError("no upstream server lines in deploy/nginx.conf")
        block = "".join(f"        server {n.address} {servers[0]};\n" for n in nodes)
        text = _sub_once(r"(^\s*server unix:\S+ .*;\n)+", block, text, "upstream blocks")
        # The workers of a master running as root would drop to www-data, which
        # cannot read a root-owned temp dir: keep root there (CI runs as root).
        user = "user root;" if os.geteuid() == 0 else ""
        text = _sub_once(r"^user www-data;$", user, text, "user lines")
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        limit = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
        text = _sub_once(r"^worker_rlimit_nofile \d+;$", f"worker_rlimit_nofile {limit};", text,
                         "worker_rlimit_nofile lines")
        self.port = free_port()
        text = _sub_once(r"listen 127\.0\.0\.1:8080 ", f"listen 127.0.0.1:{self.port} ", text,
                         "listen lines")
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(text)
        return conf

    def start(self, nodes: Sequence[Node], timeout: float = 10.0) -> None:
        """Render the config, check it with ``nginx -t`` and run nginx in the foreground."""
        for _attempt in range(3):
            conf = self.render(nodes)
            base = [NGINX, "-p", str(self.prefix), "-c", str(conf)]
            check = subprocess.run([*base, "-t", "-q"], capture_output=True, timeout=30)
            if check.returncode != 0:
                raise ClusterError(f"nginx -t failed: {check.stderr.decode(errors='replace')}")
            with open(self.prefix / "nginx.out", "ab") as out:
                self.proc = subprocess.Popen([*base, "-g", "daemon off;"], stdout=out,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
            if self.wait_ready(timeout):
                return
            self.stop()
        raise ClusterError(f"nginx did not start:\n{self.log_tail()}")

    def ready(self) -> bool:
        """True once nginx accepts connections on its port."""
        return accepts(self.port)

    def access_log(self) -> str:
        """The access log so far (nginx flushes its buffer every second)."""
        try:
            return (self.prefix / "access.log").read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The end of nginx's error log and output."""
        out = []
        for name in ("error.log", "nginx.out"):
            try:
                text = (self.prefix / name).read_text(errors="replace")
            except OSError:
                continue
            out.append("".join(text.splitlines(True)[-lines:]))
        return "\n".join(out)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop nginx (SIGQUIT: graceful, then SIGKILL to its group after ``timeout``)."""
        super().stop(timeout)


class LocalCluster:
    """``n`` webmini nodes behind one nginx, all on loopback, in a temp dir."""

    def __init__(self, n: int, *, db_url: str, memcached: Sequence[str], secret: str,
                 workdir: str | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="webmini-cluster-"))
        env = {
            "WEBMINI_DB_URL": db_url,
            "WEBMINI_MEMCACHED": ",".join(memcached),
            "WEBMINI_SECRET": secret,
        }
        self.nodes = [Node(self.workdir, i + 1, env) for i in range(n)]
        self.nginx = Nginx(self.workdir)

    @property
    def url(self) -> str:
        """The balancer's base URL."""
        return self.nginx.url

    def start(self) -> LocalCluster:
        """Start every node, then nginx; stop what started if anything fails."""
        try:
            for node in self.nodes:
                node.start()
            self.nginx.start(self.nodes)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop nginx and every node."""
        self.nginx.stop()
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a local cluster until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--memcached", required=True, help="host:port,host:port")
    parser.add_argument("--secret", required=True)
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.nodes, db_url=args.db_url, memcached=args.memcached.split(","),
                           secret=args.secret)
    with cluster:
        print(f"nginx: {cluster.url}  (work dir {cluster.workdir})")
        for node in cluster.nodes:
            print(f"{node.name}: {node.url}  uwsgi {node.address}  stats :{node.stats_port}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
