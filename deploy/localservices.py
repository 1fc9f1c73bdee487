"""Private MariaDB and memcached servers on free loopback ports, for tests and benchmarks.

Plain classes and functions, no pytest: ``tests/support`` wraps them in
fixtures, ``benchmarks/db.py`` and ``benchmarks/cluster.py`` use them
directly. Every server binds 127.0.0.1 only, on a port the kernel just
handed out (:func:`free_port`), with its files in a temp directory.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar


class ServiceError(RuntimeError):
    """A private server could not be set up, started or stopped."""


class MemcachedError(ServiceError):
    """A private memcached would not start."""


_handed_out: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    Never the same port twice in one process: the kernel may give a port
    just closed here to the next bind to port 0, so two calls made before
    either server binds (an HTTP port and a stats port) could collide.
    """
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise ServiceError("no free loopback port left that this process has not handed out")


# ======================================================================
# MariaDB
# ======================================================================

DATABASE = "webmini_test"
USER = "webmini"

# Small buffers and no durability: a throwaway server that starts in seconds.
_SERVER_OPTIONS = [
    "--skip-networking=0",
    "--bind-address=127.0.0.1",
    "--skip-name-resolve",
    "--skip-log-bin",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=0",
    "--max-connections=500",
    "--performance-schema=0",
    "--character-set-server=utf8mb4",
]


class MariaDBError(ServiceError):
    """The private MariaDB server could not be set up, started or stopped."""


S = TypeVar("S", bound="LocalServer")


@dataclass
class LocalServer:
    """A private database server process and its temp directory (subclasses say which)."""

    basedir: str
    port: int
    password: str
    host: str = "127.0.0.1"
    user: str = USER
    database: str = DATABASE
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    kind: ClassVar[str]  # in the temp dir's name
    program: ClassVar[str]  # the server's name in messages
    scheme: ClassVar[str]  # of ``url``
    log_name: ClassVar[str]  # in ``basedir``
    error: ClassVar[type[ServiceError]]
    stop_signal: ClassVar[signal.Signals]  # the server's clean shutdown
    kill_on_abort: ClassVar[bool]  # SIGKILL a server that failed to start (else stop_signal)

    def _spawn(self) -> None:
        raise NotImplementedError

    def _probe(self) -> None:
        """Connect once and close; raises while the server is not up."""
        raise NotImplementedError

    @property
    def datadir(self) -> str:
        """The server's data directory."""
        return os.path.join(self.basedir, "data")

    @property
    def log_path(self) -> str:
        """The server's log."""
        return os.path.join(self.basedir, self.log_name)

    @property
    def url(self) -> str:
        """A database URL for the test user over TCP."""
        return f"{self.scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log."""
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise self.error(f"{self.program} exited with {code}:\n{self.log_tail()}")
            try:
                self._probe()
                return
            except Exception as exc:  # the driver's errors: not up yet
                last = exc
            time.sleep(0.05)
        raise self.error(f"{self.program} not ready after {timeout} s ({last}):\n{self.log_tail()}")

    def start(self, timeout: float = 60.0) -> None:
        """Start the server on this port and data directory and wait until it answers."""
        self._spawn()
        self._wait_ready(timeout)

    def stop(self, timeout: float = 30.0, kill: bool = False) -> None:
        """Stop the server (its clean shutdown; SIGKILL with ``kill`` or on timeout)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else self.stop_signal)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def cleanup(self) -> None:
        """Stop the server and remove its temp directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.basedir, ignore_errors=True)


def launch(cls: type[S], init: Callable[[str], None], provision: Callable[[S], None],
           attempts: int = 3, fields: dict[str, Any] | None = None) -> S:
    """Initialise a temp dir, start ``cls`` on a free port and provision it; or clean up.

    ``fields`` are more keywords for ``cls`` (``init`` may fill the dict in).
    """
    basedir = tempfile.mkdtemp(prefix=f"webmini-{cls.kind}-")
    server: S | None = None
    try:
        init(basedir)
        error: BaseException | None = None
        for _ in range(attempts):
            # The free port may be taken between probing and binding: retry with another.
            server = cls(basedir=basedir, port=free_port(), password=secrets.token_urlsafe(12),
                         **(fields or {}))
            try:
                server.start()
                break
            except cls.error as exc:
                error = exc
                server.stop(kill=cls.kill_on_abort)
        else:
            raise cls.error(f"{cls.program} did not start: {error}")
        assert server is not None
        provision(server)
        return server
    except BaseException:
        if server is not None:
            server.stop(kill=cls.kill_on_abort)
        shutil.rmtree(basedir, ignore_errors=True)
        raise


@dataclass
class MariaDBServer(LocalServer):
    """One private mariadbd process and its temp directory."""

    kind: ClassVar[str] = "mariadb"
    program: ClassVar[str] = "mariadbd"
    scheme: ClassVar[str] = "mysql"
    log_name: ClassVar[str] = "error.log"
    error: ClassVar[type[ServiceError]] = MariaDBError
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    kill_on_abort: ClassVar[bool] = True
    #: Certificates when the server speaks TLS (``start_mariadb(tls=True)``).
    tls: TLSFiles | None = None

    @property
    def socket_path(self) -> str:
        """The server's unix socket."""
        return os.path.join(self.basedir, "mariadb.sock")

    def params(self) -> dict[str, Any]:
        """Connection parameters for the test user over TCP."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }

    def root_connection(self) -> Any:
        """A root connection over the unix socket (for setup and inspection)."""
        import pymysql

        return pymysql.connect(unix_socket=self.socket_path, user="root", password="",
                               autocommit=True, connect_timeout=5)

    def _probe(self) -> None:
        self.root_connection().close()

    def _spawn(self) -> None:
        cmd = [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--port={self.port}",
            f"--pid-file={os.path.join(self.basedir, 'mariadb.pid')}",
            f"--log-error={self.log_path}",
            f"--tmpdir={self.basedir}",
            "--user=root",
            *_SERVER_OPTIONS,
        ]
        if self.tls is not None:
            cmd += [f"--ssl-ca={self.tls.ca}", f"--ssl-cert={self.tls.cert}",
                    f"--ssl-key={self.tls.key}"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def restart(self, kill: bool = False) -> None:
        """Stop and start the server again on the same port (a crash with ``kill``)."""
        self.stop(kill=kill)
        self.start()


def _install_db(basedir: str) -> None:
    tool = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if tool is None:
        raise MariaDBError("mariadb-install-db not found (apt-get install mariadb-server)")
    cmd = [
        tool, "--no-defaults", f"--datadir={os.path.join(basedir, 'data')}", "--user=root",
        "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
        f"--tmpdir={basedir}",
    ]
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    if res.returncode != 0:
        out = (res.stdout + res.stderr).decode(errors="replace")[-3000:]
        raise MariaDBError(f"mariadb-install-db failed ({res.returncode}):\n{out}")


def _provision(server: MariaDBServer) -> None:
    conn = server.root_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
            cur.execute(f"CREATE USER '{USER}'@'%%' IDENTIFIED BY %s", (server.password,))
            cur.execute(f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%'")
    finally:
        conn.close()


def start_mariadb(attempts: int = 3, tls: bool = False) -> MariaDBServer:
    """Initialise, start and provision a private MariaDB; the caller must ``cleanup()`` it.

    With ``tls`` the server also speaks TLS, with a certificate for
    127.0.0.1 signed by a CA made for it (``server.tls``).
    """
    fields: dict[str, Any] = {}

    def init(basedir: str) -> None:
        _install_db(basedir)
        if tls:
            fields["tls"] = make_tls_files(os.path.join(basedir, "tls"))

    return launch(MariaDBServer, init, _provision, attempts, fields)


@dataclass(frozen=True)
class TLSFiles:
    """A private CA, a server certificate it signed, and a CA that signed nothing here."""

    ca: str
    cert: str
    key: str
    other_ca: str


def _openssl(*args: str) -> None:
    res = subprocess.run(["openssl", *args], stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=60)
    if res.returncode != 0:
        raise ServiceError(f"openssl {args[0]} failed: {res.stderr.decode(errors='replace')}")


def make_tls_files(directory: str) -> TLSFiles:
    """Make a CA and a server certificate valid for IP 127.0.0.1 only (not "localhost").

    Both carry the extensions strict verification asks for (Python 3.13's
    default contexts set VERIFY_X509_STRICT): key usage on the CA, key
    identifiers, a server-only extended key usage.
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = functools.partial(os.path.join, directory)
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", f"/CN=webmini test {name}", "-keyout", path(f"{name}.key"),
                 "-out", path(f"{name}.pem"),
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-addext", "subjectKeyIdentifier=hash")
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", path("server.key"), "-out", path("server.csr"))
    with open(path("server.ext"), "w") as ext:
        ext.write("basicConstraints = critical, CA:FALSE\n"
                  "keyUsage = critical, digitalSignature, keyEncipherment\n"
                  "extendedKeyUsage = serverAuth\n"
                  "subjectAltName = IP:127.0.0.1\n"
                  "subjectKeyIdentifier = hash\n"
                  "authorityKeyIdentifier = keyid, issuer\n")
    _openssl("x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"),
             "-CAkey", path("ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", path("server.ext"), "-out", path("server.pem"))
    return TLSFiles(ca=path("ca.pem"), cert=path("server.pem"), key=path("server.key"),
                    other_ca=path("other-ca.pem"))


# ======================================================================
# memcached
# ======================================================================

MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"


_LAST_LINES = (b"END\r\n", b"OK\r\n", b"STORED\r\n", b"ERROR\r\n")


def raw_command(
    address: str, command: bytes, timeout: float = 2.0, ends: tuple[bytes, ...] = _LAST_LINES
) -> bytes:
    """Send one text-protocol command to ``host:port``; return the reply up to a final line."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(command + b"\r\n")
        data = b""
        while not data.endswith(ends):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def server_stats(address: str) -> dict[str, str]:
    """Return memcached's ``stats`` for one node, read over a fresh connection."""
    stats: dict[str, str] = {}
    for line in raw_command(address, b"stats").decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = parts[2]
    return stats


class MemcachedNode:
    """One memcached process; keeps its port across restarts."""

    def __init__(self, workdir: Path, index: int) -> None:
        self.workdir = workdir
        self.index = index
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, the node's name on the ring."""
        return f"127.0.0.1:{self.port}"

    def start(self, same_port: bool = False) -> None:
        """Start memcached (on a new free port unless ``same_port``); MemcachedError if it won't."""
        attempts = 5
        last_error = ""
        for _ in range(attempts):
            if not same_port or not self.port:
                self.port = free_port()
            log = self.workdir / f"memcached-{self.index}.log"
            with open(log, "ab") as out:
                self.proc = subprocess.Popen(
                    [MEMCACHED, "-u", "root", "-l", "127.0.0.1", "-p", str(self.port),
                     "-U", "0", "-m", "64", "-c", "4096", "-t", "2"],
                    stdout=out, stderr=subprocess.STDOUT,
                )
            if self._wait_ready(5.0):
                return
            last_error = log.read_text(errors="replace")[-500:]
            self.stop()
            if same_port:
                time.sleep(0.2)  # the old socket may still be closing
        raise MemcachedError(
            f"memcached would not start on 127.0.0.1 (last port {self.port}): {last_error}"
        )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                if raw_command(self.address, b"version", 0.5, (b"\r\n",)).startswith(b"VERSION"):
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process (a crash) and wait for it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    stop = kill

    def freeze(self) -> None:
        """SIGSTOP the process: connections are accepted by the kernel, never answered.

        Returns once every thread is stopped: SIGSTOP is delivered
        asynchronously, and a worker thread busy on another core could
        otherwise still answer the next request.
        """
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5.0
        while not _all_threads_stopped(self.proc.pid):
            if time.monotonic() > deadline:
                raise ServiceError(f"memcached {self.address} did not stop on SIGSTOP")
            time.sleep(0.001)

    def thaw(self) -> None:
        """SIGCONT a frozen process."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Start again on the same port (kill first if still running)."""
        self.kill()
        self.start(same_port=True)

    def stats(self) -> dict[str, str]:
        """memcached's ``stats`` for this node."""
        return server_stats(self.address)


class MemcachedCluster:
    """Three memcached nodes (more on demand) for one test session."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.workdir = workdir
        self.nodes = [MemcachedNode(workdir, i) for i in range(size)]
        self.extra: list[MemcachedNode] = []

    @property
    def addresses(self) -> list[str]:
        """``host:port`` of the base nodes, in order."""
        return [n.address for n in self.nodes]

    def start(self) -> None:
        """Start every base node that is not running (same port after the first start)."""
        for node in self.nodes:
            if not node.running:
                node.start(same_port=bool(node.port))

    def add_node(self) -> MemcachedNode:
        """Start one more node, stopped at the end of the test."""
        node = MemcachedNode(self.workdir, len(self.nodes) + len(self.extra))
        node.start()
        self.extra.append(node)
        return node

    def reset(self) -> None:
        """Thaw, restart what died, stop extra nodes and empty every base node."""
        for node in self.nodes:
            if node.running:
                node.thaw()
        for node in self.extra:
            node.stop()
        self.extra.clear()
        self.start()
        for node in self.nodes:
            raw_command(node.address, b"flush_all")

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes + self.extra:
            node.stop()


def _all_threads_stopped(pid: int) -> bool:
    """True when every thread of ``pid`` is in the stopped state (``T`` in /proc)."""
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            continue  # the thread ended
        if state not in ("T", "t"):
            return False
    return True
