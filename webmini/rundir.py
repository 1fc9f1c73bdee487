"""Private runtime directories shared by the worker processes of one node.

The metrics spool and the WebSocket fan-out keep files and sockets in a
directory every worker of a node opens by name. Another local user must not
be able to plant a symlink there, swap the directory, read what is in it or
inject into it. ``PrivateDir`` creates the directory mode 0700, refuses one
that is a symlink, is not ours or is open to others, and then works only
through a directory file descriptor: ``openat``-style calls with
``O_NOFOLLOW``/``O_EXCL``, and ``/proc/self/fd/<fd>/<name>`` paths for unix
sockets, so re-pointing the path later changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

__all__ = ["PrivateDir", "default_runtime_dir"]

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def default_runtime_dir(name: str) -> str:
    """Where ``name`` lives by default: ``$XDG_RUNTIME_DIR/name``, else ``/run/name`` (root).

    ``$XDG_RUNTIME_DIR`` (systemd's per-user 0700 tmpfs) or ``/run/user/<uid>``
    for a user; ``/run`` for root. Never a predictable name in a shared
    ``/tmp``: a ``ValueError`` asks for an explicit directory instead.
    """
    uid = os.geteuid()
    candidates = [os.environ.get("XDG_RUNTIME_DIR", ""), f"/run/user/{uid}"]
    for base in candidates:
        if base and _owned_private_dir(base, uid):
            return os.path.join(base, name)
    if uid == 0:
        return os.path.join("/run", name)
    raise ValueError(f"no private runtime directory for {name!r} (set XDG_RUNTIME_DIR "
                     "or pass a directory only this user can write to)")


def _owned_private_dir(path: str, uid: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077


class PrivateDir:
    """A directory only this user can use (0700, ours, not a symlink), held open by fd."""

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = os.path.abspath(path)
        if create:
            parent = os.path.dirname(self.path)
            os.makedirs(parent, mode=0o700, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.path, 0o700)
        # SECURITY: O_NOFOLLOW: a symlink planted at the path is refused, not
        # followed; everything afterwards goes through this descriptor.
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC)
        except OSError as exc:
            raise PermissionError(f"{self.path}: not a private directory ({exc})") from exc
        st = os.fstat(fd)
        # SECURITY: whoever else can enter or write the directory can read
        # snapshots or messages, or inject them: it must be ours, mode 0700.
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            os.close(fd)
            raise PermissionError(
                f"{self.path} must be a directory owned by uid {os.geteuid()}, mode 0700 "
                f"(it is uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o})")
        self.fd = fd

    def socket_path(self, name: str) -> str:
        """A path naming ``name`` inside this very directory, for ``bind``/``sendto``."""
        # SECURITY: resolved through our descriptor, not the directory's
        # name: swapping the directory for another one changes nothing.
        return f"/proc/self/fd/{self.fd}/{name}"

    def listdir(self) -> list[str]:
        """Names in the directory."""
        return os.listdir(self.fd)

    def write_atomic(self, name: str, data: bytes) -> None:
        """Replace ``name`` with ``data``: a fresh 0600 temp file, then a rename."""
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        # SECURITY: O_EXCL + O_NOFOLLOW: never opens a file or symlink
        # somebody else put there; the rename is within the held directory.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
                     0o600, dir_fd=self.fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            self.unlink(tmp)
            raise

    def read(self, name: str, limit: int = 1 << 20) -> bytes | None:
        """Contents of ``name`` if a regular file of ours of at most ``limit`` bytes, else None."""
        try:
            fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | os.O_NONBLOCK | _O_CLOEXEC,
                         dir_fd=self.fd)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            # SECURITY: only files we wrote; a FIFO, device or another
            # user's file is ignored.
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                return None
            data = f.read(limit + 1)
        return None if len(data) > limit else data

    def is_our_socket(self, name: str) -> bool:
        """True when ``name`` is a unix socket owned by us (not a symlink)."""
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return False
        return stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid()

    def unlink(self, name: str) -> None:
        """Remove ``name`` from the directory; no error if it is gone."""
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=self.fd)

    def close(self) -> None:
        """Close the directory descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
