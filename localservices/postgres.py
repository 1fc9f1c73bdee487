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
import shutil
import signal
import subprocess
from dataclasses import dataclass
from typing import Any, ClassVar

from .databases import DATABASE, USER, LocalServer, launch
from .process import ServiceError

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


class PostgresError(ServiceError):
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
class PostgresServer(LocalServer):
    """One private postgres process and its temp directory."""

    kind: ClassVar[str] = "postgres"
    program: ClassVar[str] = "postgres"
    scheme: ClassVar[str] = "postgres"
    log_name: ClassVar[str] = "postgres.log"
    error: ClassVar[type[ServiceError]] = PostgresError
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT  # fast shutdown
    kill_on_abort: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:
        """``web.database`` keywords for the test user over TCP."""
        return {"dbn": "postgres", "host": self.host, "port": self.port, "user": self.user,
                "pw": self.password, "db": self.database}

    def superuser(self) -> Any:
        """A superuser connection over the unix socket (trust auth, for setup)."""
        import pg8000.dbapi

        conn = pg8000.dbapi.connect(user="postgres", database="postgres",
                                    unix_sock=os.path.join(self.basedir, f".s.PGSQL.{self.port}"))
        conn.autocommit = True
        return conn

    def _probe(self) -> None:
        self.superuser().close()

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:  # the server keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [os.path.join(_bindir(), "postgres"), "-D", self.datadir, "-p", str(self.port),
                 "-k", self.basedir, *_SERVER_OPTIONS],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                **_run_as(),
            )


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


def _provision(server: PostgresServer) -> None:
    conn = server.superuser()
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE USER {USER} PASSWORD '{server.password}'")
        cur.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
    finally:
        conn.close()


def start_postgres(attempts: int = 3) -> PostgresServer:
    """Initialise, start and provision a private PostgreSQL; the caller must ``cleanup()`` it."""
    return launch(PostgresServer, _initdb, _provision, attempts)
