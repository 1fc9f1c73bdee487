"""A private MariaDB on a free loopback port, its files in a temp dir (optionally with TLS)."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from typing import Any, ClassVar

from .databases import DATABASE, USER, LocalServer, launch
from .process import ServiceError

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


