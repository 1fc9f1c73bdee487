"""A private PostgreSQL server for the tests and benchmarks (like ``localservices``'s MariaDB).

``start_postgres()`` runs ``initdb`` in a temp dir, starts ``postgres`` on a
free 127.0.0.1 port with its unix socket in the same temp dir, creates a test
database and user, and returns a ``PostgresServer`` to ``cleanup()`` later.
PostgreSQL refuses to run as root: as root, the server runs as the
``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from localservices import free_port

DATABASE = "webmini_test"
USER = "webmini"

# No durability: a throwaway server that starts in about a second.
_SERVER_OPTIONS = [
    "-c", "fsync=off",
    "-c", "synchronous_commit=off",
    "-c", "full_page_writes=off",
    "-c", "max_connections=300",
    "-c", "shared_buffers=32MB",
    "-c", "listen_addresses=127.0.0.1",
    "-c", "log_min_messages=warning",
]


class PostgresError(RuntimeError):
    """The private PostgreSQL server could not be set up, started or stopped."""


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise PostgresError("initdb not found (apt-get install postgresql)")


def _run_as() -> dict[str, Any]:
    """Popen keywords that drop root to the postgres user (nothing when not root)."""
    if os.getuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresError("running as root and no 'postgres' user to run the server") from exc
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@dataclass
class PostgresServer:
    """One private postgres process and its temp directory."""

    basedir: str
    port: int
    password: str
    host: str = "127.0.0.1"
    user: str = USER
    database: str = DATABASE
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def datadir(self) -> str:
        """The cluster's data directory."""
        return os.path.join(self.basedir, "data")

    @property
    def log_path(self) -> str:
        """The server's log."""
        return os.path.join(self.basedir, "postgres.log")

    def params(self) -> dict[str, Any]:
        """``web.database`` keywords for the test user over TCP."""
        return {"dbn": "postgres", "host": self.host, "port": self.port, "user": self.user,
                "pw": self.password, "db": self.database}

    @property
    def url(self) -> str:
        """A ``postgres://`` URL for the test user over TCP."""
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def superuser(self) -> Any:
        """A superuser connection over the unix socket (trust auth, for setup)."""
        import pg8000.dbapi

        conn = pg8000.dbapi.connect(user="postgres", database="postgres",
                                    unix_sock=os.path.join(self.basedir, f".s.PGSQL.{self.port}"))
        conn.autocommit = True
        return conn

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server log."""
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, timeout: float = 60.0) -> None:
        """Start postgres and wait until it accepts connections."""
        with open(self.log_path, "ab") as log:  # the server keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [os.path.join(_bindir(), "postgres"), "-D", self.datadir, "-p", str(self.port),
                 "-k", self.basedir, *_SERVER_OPTIONS],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                **_run_as(),
            )
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PostgresError(f"postgres exited with {self.proc.returncode}:\n"
                                    f"{self.log_tail()}")
            try:
                self.superuser().close()
                return
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(0.05)
        raise PostgresError(f"postgres not ready after {timeout} s ({last}):\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT); SIGKILL on timeout."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
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


def _initdb(basedir: str) -> None:
    run_as = _run_as()
    if run_as:
        os.chown(basedir, run_as["user"], run_as["group"])
    res = subprocess.run(
        [os.path.join(_bindir(), "initdb"), "-D", os.path.join(basedir, "data"), "-U", "postgres",
         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
         "--no-sync"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=120, **run_as,
    )
    if res.returncode != 0:
        out = (res.stdout + res.stderr).decode(errors="replace")[-3000:]
        raise PostgresError(f"initdb failed ({res.returncode}):\n{out}")


def start_postgres(attempts: int = 3) -> PostgresServer:
    """Initialise, start and provision a private PostgreSQL; the caller must ``cleanup()`` it."""
    basedir = tempfile.mkdtemp(prefix="webmini-postgres-")
    server: PostgresServer | None = None
    try:
        _initdb(basedir)
        error: BaseException | None = None
        for _ in range(attempts):
            # The free port may be taken between probing and binding: retry with another.
            server = PostgresServer(basedir=basedir, port=free_port(),
                                    password=secrets.token_urlsafe(12))
            try:
                server.start()
                break
            except PostgresError as exc:
                error = exc
                server.stop()
        else:
            raise PostgresError(f"postgres did not start: {error}")
        assert server is not None
        conn = server.superuser()
        try:
            cur = conn.cursor()
            cur.execute(f"CREATE USER {USER} PASSWORD '{server.password}'")
            cur.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        finally:
            conn.close()
        return server
    except BaseException:
        if server is not None:
            server.stop()
        shutil.rmtree(basedir, ignore_errors=True)
        raise
