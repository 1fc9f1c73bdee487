"""Private memcached servers on free loopback ports: one node, or a cluster of three."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .process import Service, ServiceError, free_port


class MemcachedError(ServiceError):
    """A private memcached would not start."""


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


class MemcachedNode(Service):
    """One memcached process; keeps its port across restarts."""

    program = "memcached"

    def __init__(self, workdir: Path, index: int) -> None:
        self.workdir = workdir
        self.index = index
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"memcached-{index}.log"

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
            with open(self.log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    [MEMCACHED, "-u", "root", "-l", "127.0.0.1", "-p", str(self.port),
                     "-U", "0", "-m", "64", "-c", "4096", "-t", "2"],
                    stdout=out, stderr=subprocess.STDOUT,
                )
            if self.wait_ready(5.0, interval=0.02):
                return
            last_error = self.log_tail(500)
            self.stop()
            if same_port:
                time.sleep(0.2)  # the old socket may still be closing
        raise MemcachedError(
            f"memcached would not start on 127.0.0.1 (last port {self.port}): {last_error}"
        )

    def ready(self) -> bool:
        """True once the node answers ``version``."""
        try:
            return raw_command(self.address, b"version", 0.5, (b"\r\n",)).startswith(b"VERSION")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the process (a crash) and wait for it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self, timeout: float = 15.0) -> None:
        """memcached keeps nothing worth a clean shutdown: the same as :meth:`kill`."""
        self.kill()

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
