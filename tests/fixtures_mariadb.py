"""A private MariaDB server for the tests and benchmarks.

``start_mariadb()`` initialises a data directory in a temp dir, runs
``mariadbd`` on a free 127.0.0.1 port (and a unix socket in the same temp
dir), creates a test database and user, and returns a ``MariaDBServer``
that can be restarted and stopped. It is importable from a plain script
(``benchmarks/db.py``); the pytest fixture ``mariadb`` wraps it for the
whole session. A server that cannot start is a test failure, never a skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import pymysql

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


class MariaDBError(RuntimeError):
    """The private MariaDB server could not be set up, started or stopped."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MariaDBServer:
    """One private mariadbd process and its temp directory."""

    basedir: str
    port: int
    password: str
    host: str = "127.0.0.1"
    user: str = USER
    database: str = DATABASE
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def datadir(self) -> str:
        """The server's data directory."""
        return os.path.join(self.basedir, "data")

    @property
    def socket_path(self) -> str:
        """The server's unix socket."""
        return os.path.join(self.basedir, "mariadb.sock")

    @property
    def log_path(self) -> str:
        """The server's error log."""
        return os.path.join(self.basedir, "error.log")

    def params(self) -> dict[str, Any]:
        """Connection parameters for the test user over TCP."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }

    @property
    def url(self) -> str:
        """A ``mysql://`` URL for the test user over TCP."""
        return f"mysql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def root_connection(self) -> pymysql.connections.Connection:
        """A root connection over the unix socket (for setup and inspection)."""
        return pymysql.connect(unix_socket=self.socket_path, user="root", password="",
                               autocommit=True, connect_timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's error log."""
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no error log)"

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
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise MariaDBError(f"mariadbd exited with {code}:\n{self.log_tail()}")
            try:
                self.root_connection().close()
                return
            except pymysql.err.MySQLError as exc:
                last = exc
            time.sleep(0.05)
        raise MariaDBError(f"mariadbd not ready after {timeout} s ({last}):\n{self.log_tail()}")

    def start(self, timeout: float = 60.0) -> None:
        """Start mariadbd on the same port and data directory and wait until it answers."""
        self._spawn()
        self._wait_ready(timeout)

    def stop(self, timeout: float = 30.0, kill: bool = False) -> None:
        """Stop mariadbd (SIGTERM, a clean shutdown; SIGKILL with ``kill`` or on timeout)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def restart(self, kill: bool = False) -> None:
        """Stop and start the server again on the same port (a crash with ``kill``)."""
        self.stop(kill=kill)
        self.start()

    def cleanup(self) -> None:
        """Stop the server and remove its temp directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.basedir, ignore_errors=True)


def _install_db(datadir: str, basedir: str) -> None:
    tool = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if tool is None:
        raise MariaDBError("mariadb-install-db not found (apt-get install mariadb-server)")
    cmd = [
        tool, "--no-defaults", f"--datadir={datadir}", "--user=root",
        "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
        f"--tmpdir={basedir}",
    ]
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    if res.returncode != 0:
        out = (res.stdout + res.stderr).decode(errors="replace")[-3000:]
        raise MariaDBError(f"mariadb-install-db failed ({res.returncode}):\n{out}")


def start_mariadb(attempts: int = 3) -> MariaDBServer:
    """Initialise, start and provision a private MariaDB; the caller must ``cleanup()`` it."""
    basedir = tempfile.mkdtemp(prefix="webmini-mariadb-")
    server: MariaDBServer | None = None
    try:
        _install_db(os.path.join(basedir, "data"), basedir)
        error: BaseException | None = None
        for _ in range(attempts):
            # The free port may be taken between probing and binding: retry with another.
            server = MariaDBServer(basedir=basedir, port=_free_port(),
                                   password=secrets.token_urlsafe(12))
            try:
                server.start()
                break
            except MariaDBError as exc:
                error = exc
                server.stop(kill=True)
        else:
            raise MariaDBError(f"mariadbd did not start: {error}")
        assert server is not None
        conn = server.root_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
                cur.execute(f"CREATE USER '{USER}'@'%%' IDENTIFIED BY %s", (server.password,))
                cur.execute(f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%'")
        finally:
            conn.close()
        return server
    except BaseException:
        if server is not None:
            server.stop(kill=True)
        shutil.rmtree(basedir, ignore_errors=True)
        raise


try:
    import pytest
except ImportError:  # a plain script (the benchmark) needs no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def mariadb() -> Any:
        """A private MariaDB server for the whole session (restartable)."""
        try:
            server = start_mariadb()
        except MariaDBError as exc:
            pytest.fail(f"cannot start a private MariaDB: {exc}", pytrace=False)
        try:
            yield server
        finally:
            server.cleanup()

    @pytest.fixture(scope="session")
    def mariadb_params(mariadb: MariaDBServer) -> dict[str, Any]:
        """Connection parameters (host, port, user, password, database) of the test server."""
        return mariadb.params()
