"""Session stores with web.py's interface (``store[id]``, ``id in store``, ``cleanup``).

Data is JSON (web.py pickles it). Types sessions commonly hold survive the
round trip: dicts come back as ``Storage``, and datetimes, dates, sets,
tuples and bytes are tagged so they come back as themselves.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import errno
import json
import os
import re
import secrets
import stat
import tempfile
import threading
import time
from typing import Any

from webmini.storage import Storage

__all__ = ["Store", "DiskStore", "DBStore", "MemoryStore", "encode", "decode",
           "new_session_id", "valid_session_id"]

# web.py's ids are 40 hex digits (sha1); webmini's are 40 random hex digits.
# SECURITY: only hex ids of a sane length ever reach a store: no path
# separators, dots or NULs for DiskStore, nothing odd for a database.
_SESSION_ID = re.compile(r"[0-9a-fA-F]{32,128}")
_TAG = "__webmini_type__"


def new_session_id() -> str:
    """Return a new random session id: 160 bits from ``secrets``, as 40 hex digits."""
    return secrets.token_hex(20)


def valid_session_id(session_id: Any) -> bool:
    """Return whether ``session_id`` has the shape of a session id."""
    return isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id) is not None


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime.datetime):
        return {_TAG: "datetime", "v": obj.isoformat()}
    if isinstance(obj, datetime.date):
        return {_TAG: "date", "v": obj.isoformat()}
    if isinstance(obj, (set, frozenset)):
        return {_TAG: "set", "v": list(obj)}
    if isinstance(obj, bytes):
        return {_TAG: "bytes", "v": base64.b64encode(obj).decode("ascii")}
    raise TypeError(f"a session cannot hold {type(obj).__name__} (JSON-compatible data only)")


def _tag_tuples(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return {_TAG: "tuple", "v": [_tag_tuples(x) for x in obj]}
    if isinstance(obj, list):
        return [_tag_tuples(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _tag_tuples(v) for k, v in obj.items()}
    return obj


def _hook(obj: dict[str, Any]) -> Any:
    kind = obj.get(_TAG)
    if kind is None:
        return Storage(obj)
    value: Any = obj.get("v")
    if kind == "datetime":
        return datetime.datetime.fromisoformat(value)
    if kind == "date":
        return datetime.date.fromisoformat(value)
    if kind == "set":
        return set(value)
    if kind == "tuple":
        return tuple(value)
    if kind == "bytes":
        return base64.b64decode(value)
    return Storage(obj)


def encode(data: dict[str, Any]) -> str:
    """Serialise session data as JSON text."""
    return json.dumps(_tag_tuples(data), default=_default, separators=(",", ":"))


def decode(text: str | bytes) -> dict[str, Any]:
    """Parse :func:`encode`'s JSON; ValueError for anything else (e.g. web.py's pickles)."""
    data = json.loads(text, object_hook=_hook)
    if not isinstance(data, dict):
        raise ValueError("session data is not a JSON object")
    return data


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
