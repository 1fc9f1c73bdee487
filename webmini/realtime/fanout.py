"""Broadcast across the worker processes of a node: unix datagram sockets in one directory.

Each process that joins a group binds ``<directory>/<pid>.sock`` and reads
it in one greenlet; a broadcast sends one datagram to every other socket
in the directory, whose reader delivers it to its local members. Works the
same under uWSGI (any number of workers, respawns included: a dead
worker's socket refuses and is removed) and with several dev servers.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import struct
from collections.abc import Callable
from typing import Any

import gevent
from gevent import socket as gsocket

log = logging.getLogger(__name__)

Deliver = Callable[[str, int, bytes], Any]

_HEAD = struct.Struct("!BH")  # opcode, group name length
_RCVBUF = 4 << 20
_MAX_DATAGRAM = 200_000  # below Linux's default unix datagram limit (net.core.wmem_default)
_SEND_RETRIES = 200  # x 5 ms: a peer that cannot take a datagram for 1 s misses it


class Fanout:
    """Relays broadcasts from this process to the other processes of the node."""

    def ensure_started(self, deliver: Deliver) -> None:
        """Start receiving in this process (after a fork, again) and deliver locally."""
        raise NotImplementedError

    def publish(self, group: str, opcode: int, payload: bytes) -> None:
        """Send one message for ``group`` to the other processes."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop receiving and remove this process's endpoint."""
        raise NotImplementedError


class UnixFanout(Fanout):
    """Fan-out over unix datagram sockets in ``directory`` (created private, mode 0700)."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(directory)
        self._pid = 0
        self._sock: Any = None
        self._path = ""
        self._reader: Any = None
        self._out: Any = None

    def ensure_started(self, deliver: Deliver) -> None:
        """Bind this process's socket and spawn its reader, once per process."""
        pid = os.getpid()
        if self._pid == pid:
            return
        # After a fork the parent's socket and greenlet are not ours.
        self._pid = pid
        _private_dir(self.directory)
        self._path = os.path.join(self.directory, f"{pid}.sock")
        _unlink_quietly(self._path)
        sock = gsocket.socket(gsocket.AF_UNIX, gsocket.SOCK_DGRAM)
        sock.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_RCVBUF, _RCVBUF)
        sock.bind(self._path)
        self._sock = sock
        # A separate non-blocking socket to send: poll() on an unconnected
        # datagram socket says nothing about the peer's queue, so a full
        # peer is retried with a short back-off instead of waited on.
        out = gsocket.socket(gsocket.AF_UNIX, gsocket.SOCK_DGRAM)
        out.setblocking(False)
        self._out = out
        self._reader = gevent.spawn(self._read, sock, deliver)

    def publish(self, group: str, opcode: int, payload: bytes) -> None:
        """Send the message to every other process's socket; drop dead ones."""
        name = group.encode("utf-8")
        datagram = _HEAD.pack(opcode, len(name)) + name + payload
        if len(datagram) > _MAX_DATAGRAM:
            raise ValueError(f"broadcast message too large to fan out ({len(payload)} bytes)")
        sock = self._out
        if sock is None:
            return
        for entry in os.listdir(self.directory):
            path = os.path.join(self.directory, entry)
            if path == self._path or not entry.endswith(".sock"):
                continue
            self._send(sock, datagram, path)

    def _send(self, sock: Any, datagram: bytes, path: str) -> None:
        for _ in range(_SEND_RETRIES):
            try:
                sock.sendto(datagram, path)
                return
            except BlockingIOError:
                gevent.sleep(0.005)
            except (ConnectionRefusedError, FileNotFoundError):
                # SECURITY: only our own directory (0700) is ever cleaned up.
                _unlink_quietly(path)
                return
            except OSError as exc:
                if exc.errno == errno.ENOTSOCK:
                    return
                raise
        log.warning("websocket fanout: %s is not reading, message dropped", path)

    def _read(self, sock: Any, deliver: Deliver) -> None:
        while True:
            try:
                datagram = sock.recv(_MAX_DATAGRAM + 1024)
            except OSError:
                return  # closed by stop()
            try:
                opcode, size = _HEAD.unpack_from(datagram)
                start = _HEAD.size
                group = datagram[start:start + size].decode("utf-8")
                deliver(group, opcode, datagram[start + size:])
            except Exception:
                log.exception("websocket fanout: bad datagram dropped")

    def stop(self) -> None:
        """Close this process's socket and remove it from the directory."""
        if self._reader is not None:
            self._reader.kill(block=False)
            self._reader = None
        if self._sock is not None:
            self._sock.close()
            self._out.close()
            self._sock = self._out = None
            _unlink_quietly(self._path)
        self._pid = 0


def _private_dir(directory: str) -> None:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    info = os.stat(directory)
    # SECURITY: anyone who can write to the directory can inject messages
    # into every chat of the node; insist on a directory only we control.
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(f"websocket fanout directory {directory} must be ours, mode 0700")


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
