"""What the private database servers share: a data directory, a port, a user, a start-up.

``LocalServer`` is a :class:`~localservices.process.Service` with a temp
directory, a free port and a test user; ``launch`` initialises the directory,
starts the server (another port if the first was taken) and provisions it.
``mariadb.py`` and ``postgres.py`` fill in the commands.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .process import Service, ServiceError, free_port, stop_process

DATABASE = "webmini_test"
USER = "webmini"

S = TypeVar("S", bound="LocalServer")


@dataclass
class LocalServer(Service):
    """A private database server process and its temp directory (subclasses say which)."""

    basedir: str
    port: int
    password: str
    host: str = "127.0.0.1"
    user: str = USER
    database: str = DATABASE
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _last_error: BaseException | None = field(default=None, repr=False, init=False)

    kind: ClassVar[str]  # in the temp dir's name
    scheme: ClassVar[str]  # of ``url``
    log_name: ClassVar[str]  # in ``basedir``
    error: ClassVar[type[ServiceError]]
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

    def __post_init__(self) -> None:
        self.log_path = os.path.join(self.basedir, self.log_name)

    @property
    def url(self) -> str:
        """A database URL for the test user over TCP."""
        return f"{self.scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log."""
        return Service.log_tail(self, chars) or "(no log)"

    def ready(self) -> bool:
        """True once one connection succeeds."""
        try:
            self._probe()
            return True
        except Exception as exc:  # the driver's errors: not up yet
            self._last_error = exc
            return False

    def _wait_ready(self, timeout: float) -> None:
        self._last_error = None
        if self.wait_ready(timeout):
            return
        if not self.running:
            code = None if self.proc is None else self.proc.returncode
            raise self.error(f"{self.program} exited with {code}:\n{self.log_tail()}")
        raise self.error(f"{self.program} not ready after {timeout} s ({self._last_error}):\n"
                         f"{self.log_tail()}")

    def start(self, timeout: float = 60.0) -> None:
        """Start the server on this port and data directory and wait until it answers."""
        self._spawn()
        self._wait_ready(timeout)

    def stop(self, timeout: float = 30.0, kill: bool = False) -> None:
        """Stop the server (its clean shutdown; SIGKILL with ``kill`` or on timeout)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, signal.SIGKILL if kill else self.stop_signal, timeout)

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

