"""Broadcast across the worker processes of a node: unix datagram sockets in one directory.

Each process that joins a group binds ``<directory>/<pid>.sock`` and reads
it in one greenlet; a broadcast sends one datagram to every other socket
in the directory, whose reader delivers it to its local members. Works the
same under uWSGI (any number of workers, respawns included: a dead
worker's socket refuses and is removed) and with several dev servers.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from collections.abc import Callable
from typing import Any

import gevent
from gevent import socket as gsocket

from ..rundir import PrivateDir, default_runtime_dir

log = logging.getLogger(__name__)

Deliver = Callable[[str, int, bytes], Any]

_HEAD = struct.Struct("!BH")  # opcode, group name length
# Each datagram: sender pid, message number, chunk index, chunk count.
_CHUNK_HEAD = struct.Struct("!IIHH")
_RCVBUF = 4 << 20
_MAX_DATAGRAM = 200_000  # below Linux's default unix datagram limit (net.core.wmem_default)
_CHUNK = _MAX_DATAGRAM - _CHUNK_HEAD.size
#: Largest broadcast relayed (group name and payload); messages over one
#: datagram travel in chunks. Above any WebSocket.max_message_size in use.
MAX_MESSAGE = 16 << 20
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
    """Fan-out over unix datagram sockets in ``directory`` (created private, mode 0700).

    ``directory`` defaults to ``$XDG_RUNTIME_DIR/webmini-ws`` (``/run/webmini-ws``
    as root); give each app its own. It must be ours and mode 0700, else
    ``PermissionError``; it is then used only through a held descriptor.
    """

    def __init__(self, directory: str | None = None, max_message: int = MAX_MESSAGE) -> None:
        self.directory = os.path.abspath(directory or default_runtime_dir("webmini-ws"))
        self.max_message = max_message
        self._serial = 0
        # Chunks of messages still arriving: (pid, serial) -> chunks received.
        self._partial: dict[tuple[int, int], list[bytes]] = {}
        self._partial_bytes = 0
        self._pid = 0
        self._dir: PrivateDir | None = None
        self._sock: Any = None
        self._path = ""
        self._name = ""
        self._reader: Any = None
        self._out: Any = None

    def ensure_started(self, deliver: Deliver) -> None:
        """Bind this process's socket and spawn its reader, once per process."""
        pid = os.getpid()
        if self._pid == pid:
            return
        # After a fork the parent's socket and greenlet are not ours.
        self._pid = pid
        if self._dir is not None:
            self._dir.close()  # the parent's descriptor
        self._partial.clear()
        self._partial_bytes = 0
        # SECURITY: the directory is checked (ours, 0700, no symlink) and held
        # by fd; sockets are named through that fd, never through the path,
        # so a local user cannot re-point it to read or inject messages.
        self._dir = PrivateDir(self.directory)
        self._name = f"{pid}.sock"
        self._path = self._dir.socket_path(self._name)
        self._dir.unlink(self._name)
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
        message = _HEAD.pack(opcode, len(name)) + name + payload
        if len(message) > self.max_message:
            raise ValueError(f"broadcast message too large to fan out ({len(payload)} bytes)")
        sock, directory = self._out, self._dir
        if sock is None or directory is None:
            return
        # A message over one datagram goes in numbered chunks (a unix
        # datagram is limited by the socket buffer, about 200 KB by default).
        self._serial = (self._serial + 1) & 0xFFFFFFFF
        view = memoryview(message)
        count = max(1, -(-len(message) // _CHUNK))
        datagrams = [
            _CHUNK_HEAD.pack(self._pid, self._serial, i, count) + view[i * _CHUNK:(i + 1) * _CHUNK]
            for i in range(count)
        ]
        for entry in directory.listdir():
            if entry == self._name or not entry.endswith(".sock"):
                continue
            for datagram in datagrams:
                if not self._send(sock, datagram, directory, entry):
                    break

    def _send(self, sock: Any, datagram: bytes, directory: PrivateDir, entry: str) -> bool:
        """Send one datagram to ``entry``; False if that peer is gone or not reading."""
        path = directory.socket_path(entry)
        for _ in range(_SEND_RETRIES):
            try:
                sock.sendto(datagram, path)
                return True
            except BlockingIOError:
                gevent.sleep(0.005)
            except (ConnectionRefusedError, FileNotFoundError):
                # SECURITY: only our own held directory (0700) is ever cleaned up.
                directory.unlink(entry)
                return False
            except OSError as exc:
                if exc.errno in (errno.ENOTSOCK, errno.ECONNREFUSED, errno.EACCES):
                    return False
                raise
        log.warning("websocket fanout: %s is not reading, message dropped", entry)
        return False

    def _read(self, sock: Any, deliver: Deliver) -> None:
        while True:
            try:
                datagram = sock.recv(_MAX_DATAGRAM + 1024)
            except OSError:
                return  # closed by stop()
            try:
                message = self._reassemble(datagram)
                if message is None:
                    continue
                opcode, size = _HEAD.unpack_from(message)
                start = _HEAD.size
                group = message[start:start + size].decode("utf-8")
                deliver(group, opcode, message[start + size:])
            except Exception:
                log.exception("websocket fanout: bad datagram dropped")

    def _reassemble(self, datagram: bytes) -> bytes | None:
        """The whole message once its last chunk is in, else None."""
        pid, serial, index, count = _CHUNK_HEAD.unpack_from(datagram)
        chunk = datagram[_CHUNK_HEAD.size:]
        if count == 1:
            return chunk
        key = (pid, serial)
        chunks = self._partial.get(key)
        if chunks is None:
            if index != 0:
                return None  # its first chunk was dropped: never complete
            chunks = self._partial[key] = []
        if index != len(chunks):  # a chunk went missing (peer was not reading)
            self._forget(key)
            return None
        chunks.append(chunk)
        self._partial_bytes += len(chunk)
        # SECURITY: bounded: messages that never complete are forgotten,
        # oldest first, beyond two maximum-size messages in flight.
        while self._partial_bytes > 2 * self.max_message and self._partial:
            self._forget(next(iter(self._partial)))
        if len(chunks) < count or key not in self._partial:
            return None
        self._forget(key)
        return b"".join(chunks)

    def _forget(self, key: tuple[int, int]) -> None:
        chunks = self._partial.pop(key, None)
        if chunks:
            self._partial_bytes -= sum(len(c) for c in chunks)

    def stop(self) -> None:
        """Close this process's socket and remove it from the directory."""
        if self._reader is not None:
            self._reader.kill(block=False)
            self._reader = None
        if self._sock is not None:
            self._sock.close()
            self._out.close()
            self._sock = self._out = None
        if self._dir is not None:
            self._dir.unlink(self._name)
            self._dir.close()
            self._dir = None
        self._pid = 0
