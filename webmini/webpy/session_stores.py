"""Session stores with web.py's interface (``store[id]``, ``id in store``, ``cleanup``).

Data is JSON (web.py pickles it), in the session engine's one codec
(``webmini.stores.sessions.encode``): dicts come back as ``Storage``, and
datetimes, dates, sets, tuples and bytes come back as themselves. Ids have
the engine's one shape (``valid_session_id``). ``StoreAdapter`` lets the
engine use any store with this interface, a user's own included.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import stat
import tempfile
import threading
import time
from typing import Any

from webmini.stores.sessions import decode, encode, valid_session_id

__all__ = ["Store", "DiskStore", "DBStore", "MemoryStore", "StoreAdapter", "as_session_store"]


class Store:
    """Base class of web.py-style stores: a mapping of session id to data."""

    def __contains__(self, key: str) -> bool:
        raise NotImplementedError

    def __getitem__(self, key: str) -> dict[str, Any]:
        raise NotImplementedError

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        raise NotImplementedError

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError

    def cleanup(self, timeout: float) -> None:
        """Remove sessions idle for more than ``timeout`` seconds."""
        raise NotImplementedError

    def encode(self, session_dict: dict[str, Any]) -> str:
        """Serialise a session's data (JSON)."""
        return encode(session_dict)

    def decode(self, session_data: str | bytes) -> dict[str, Any]:
        """Parse stored data (JSON)."""
        return decode(session_data)


class MemoryStore(Store):
    """Sessions in this process's memory: for tests and single-process development.

    A session idle for longer than the session ``timeout`` reads as missing.
    """

    def __init__(self, timeout: float | None = None) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.timeout = timeout

    def _text(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        text, written = entry
        if self.timeout is not None and time.time() - written > self.timeout:
            return None  # idle past the timeout: gone, as in DiskStore
        return text

    def __contains__(self, key: str) -> bool:
        return self._text(key) is not None

    def __getitem__(self, key: str) -> dict[str, Any]:
        text = self._text(key)
        if text is None:
            raise KeyError(key)
        return self.decode(text)

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = (self.encode(value), time.time())

    def __delitem__(self, key: str) -> None:
        self._data.pop(key, None)

    def cleanup(self, timeout: float) -> None:
        """Drop sessions idle for more than ``timeout`` seconds."""
        limit = time.time() - timeout
        with self._lock:
            for key in [k for k, (_, t) in self._data.items() if t < limit]:
                self._data.pop(key, None)


class DiskStore(Store):
    """One JSON file per session under ``root`` (a private 0700 directory).

    The directory is created 0700 if missing (an existing one readable by
    others is made 0700) and refused if it is a symlink or writable by
    others; files are written atomically, 0600, and opened without
    following symlinks. A session idle for longer than the
    session ``timeout`` (by file modification time) reads as missing.
    """

    def __init__(self, root: str, timeout: float | None = None) -> None:
        if not os.path.exists(root):
            os.makedirs(root, mode=0o700)
        st = os.lstat(root)
        # SECURITY: a symlinked or world-writable session directory lets
        # another local user read sessions or plant one.
        if stat.S_ISLNK(st.st_mode):
            raise ValueError(f"session directory {root!r} is a symlink: refusing it")
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"session directory {root!r} is not a directory")
        if st.st_mode & 0o022:
            # Anyone who can write there can plant a session: its content is untrusted.
            raise ValueError(f"session directory {root!r} is writable by group or others "
                             "(chmod 700 it)")
        if st.st_mode & 0o077:
            # Readable by others: they could list the session ids. Tighten it.
            os.chmod(root, 0o700)
        self.root = os.path.abspath(root)
        self.timeout = timeout

    def _path(self, key: str) -> str:
        # SECURITY: the id comes from a cookie: only plain hex names reach the
        # filesystem (no "../", no separator, no NUL).
        if not valid_session_id(key):
            raise KeyError(key)
        return os.path.join(self.root, key)

    def _read(self, key: str) -> bytes | None:
        try:
            path = self._path(key)
        except KeyError:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                return None
            raise
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            if self.timeout is not None and time.time() - st.st_mtime > self.timeout:
                return None
            return f.read()

    def __contains__(self, key: str) -> bool:
        return self._read(key) is not None

    def __getitem__(self, key: str) -> dict[str, Any]:
        text = self._read(key)
        if text is None:
            raise KeyError(key)
        try:
            return self.decode(text)
        except ValueError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        text = self.encode(value).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")  # created 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text)
            os.replace(tmp, path)  # atomic; replaces a planted symlink, never follows it
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def __delitem__(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, KeyError):
            os.unlink(self._path(key))

    def cleanup(self, timeout: float) -> None:
        """Delete session files not written for ``timeout`` seconds."""
        limit = time.time() - timeout
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            try:
                st = os.lstat(path)
                if st.st_mtime < limit and (valid_session_id(name) or name.startswith(".tmp-")):
                    os.unlink(path)
            except FileNotFoundError:
                continue


class DBStore(Store):
    """Sessions in a ``web.database`` table, web.py's schema::

        create table sessions (
            session_id char(128) UNIQUE NOT NULL,
            atime timestamp NOT NULL default current_timestamp,
            data text
        );

    ``data`` holds JSON (rows written by web.py hold pickles: they read as
    missing, so those visitors start a new session).
    """

    def __init__(self, db: Any, table_name: str) -> None:
        self.db = db
        self.table = table_name

    def _row(self, key: str) -> Any:
        if not valid_session_id(key):
            return None
        rows = list(self.db.select(self.table, where="session_id=$key", vars={"key": key}))
        return rows[0] if rows else None

    def __contains__(self, key: str) -> bool:
        return self._row(key) is not None

    def __getitem__(self, key: str) -> dict[str, Any]:
        row = self._row(key)
        if row is None:
            raise KeyError(key)
        self.db.update(self.table, where="session_id=$key", vars={"key": key},
                       atime=datetime.datetime.now())
        try:
            return self.decode(row.data)
        except ValueError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        if not valid_session_id(key):
            raise KeyError(key)
        text, now = self.encode(value), datetime.datetime.now()
        if self._row(key) is not None:
            self.db.update(self.table, where="session_id=$key", vars={"key": key},
                           data=text, atime=now)
        else:
            self.db.insert(self.table, False, session_id=key, atime=now, data=text)

    def __delitem__(self, key: str) -> None:
        if valid_session_id(key):
            self.db.delete(self.table, where="session_id=$key", vars={"key": key})

    def cleanup(self, timeout: float) -> None:
        """Delete rows not accessed for ``timeout`` seconds."""
        limit = datetime.datetime.now() - datetime.timedelta(seconds=timeout)
        self.db.delete(self.table, where="atime < $limit", vars={"limit": limit})


class StoreAdapter:
    """A store with web.py's interface, as the session engine's ``SessionStore``.

    The cookie carries the bare id (as in web.py): it is random and looked up
    here, so nothing needs signing.
    """

    signed = False

    def __init__(self, store: Any) -> None:
        self.store = store

    def load(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """The data stored under id ``token``, or None."""
        # SECURITY: only well-formed ids reach the store (a user's store too).
        if not valid_session_id(token) or token not in self.store:
            return None
        try:
            data = self.store[token]
        except KeyError:
            return None
        return (token, data) if isinstance(data, dict) else None

    def save(self, session_id: str, data: dict[str, Any], timeout: int) -> str:
        """``store[session_id] = data``; the id is the token."""
        self.store[session_id] = data
        return session_id

    def delete(self, session_id: str) -> None:
        """``del store[session_id]`` if it is there."""
        if session_id in self.store:
            del self.store[session_id]

    def cleanup(self, timeout: float) -> None:
        """The store's ``cleanup(timeout)``, if it has one."""
        cleanup = getattr(self.store, "cleanup", None)
        if cleanup is not None:
            cleanup(timeout)


def as_session_store(store: Any) -> Any:
    """``store`` as the engine's ``SessionStore``: web.py-style stores get a ``StoreAdapter``."""
    if isinstance(store, Store) or hasattr(store, "__contains__") and hasattr(store, "__getitem__"):
        return StoreAdapter(store)
    return store  # already load/save/delete (CacheStore, CookieStore...)
