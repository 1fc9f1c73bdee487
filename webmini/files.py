"""Serve files from a directory safely: ``return serve_file("static", name)`` in a handler.

Content type from the name, ``Last-Modified`` / ``If-Modified-Since``,
``ETag`` / ``If-None-Match`` (304), one ``Range`` (206, or 416 when it lies
beyond the end), ``If-Range``, HEAD with ``Content-Length``. Whole files go
out through ``wsgi.file_wrapper`` (sendfile under uWSGI and gunicorn).

In production let nginx serve static files (README, "Deployment"); this
helper is for the dev server, for files that need a permission check first,
and for small deployments.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import re
import stat
from collections.abc import Iterator
from typing import IO, Any

from webmini import errors
from webmini.ctx import current
from webmini.response import header, set_status

__all__ = ["serve_file"]

_CHUNK = 64 * 1024
# SECURITY: ASCII digits only (r"\d" would take "١-٣", which int() reads as
# 1-3) and at most 19 of them (int64 range; int() refuses 4,300+ digits with a
# ValueError). Anything else is ignored: the whole file, as Werkzeug does.
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


def serve_file(
    root: str | os.PathLike[str],
    relpath: str,
    *,
    content_type: str | None = None,
    max_age: int | None = None,
    download_name: str | None = None,
    allow_hidden: bool = False,
) -> Any:
    """Answer the current request with ``root/relpath``; 404 for anything outside ``root``.

    ``max_age`` adds ``Cache-Control: max-age``; ``download_name`` sends the
    file as an attachment under that name; dot-files are 404 unless
    ``allow_hidden``.
    """
    c = current()
    if c.method not in ("GET", "HEAD"):
        raise errors.NoMethod(["GET", "HEAD"])
    fd, st = _open(root, relpath, allow_hidden)
    try:
        return _respond(c, fd, st, relpath, content_type, max_age, download_name)
    except BaseException:
        # _respond closes or hands over fd on every path that returns, and
        # raises only before it did either.
        os.close(fd)
        raise


def _open(
    root: str | os.PathLike[str], relpath: str, allow_hidden: bool
) -> tuple[int, os.stat_result]:
    """Open a regular file under ``root`` (symlinks resolved and kept inside it), or 404."""
    # SECURITY: the path comes from the client. No NUL, no backslash, no
    # ".." segment, no dot-files by default; then the real path (every
    # symlink resolved) must still lie inside the real root, so neither
    # "../" nor a symlink pointing out of the root can reach other files.
    if "\x00" in relpath or "\\" in relpath:
        raise errors.NotFound()
    parts = [p for p in relpath.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise errors.NotFound()
    if not allow_hidden and any(p.startswith(".") for p in parts):
        raise errors.NotFound()
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, *parts))
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        raise errors.NotFound()
    try:
        # SECURITY: O_NOFOLLOW: a symlink swapped in after realpath() is refused.
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise errors.NotFound() from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # directories, devices, fifos
        os.close(fd)
        raise errors.NotFound()
    return fd, st


def _respond(
    c: Any, fd: int, st: os.stat_result, relpath: str, content_type: str | None,
    max_age: int | None, download_name: str | None,
) -> Any:
    size = st.st_size
    etag = f'"{st.st_mtime_ns:x}-{size:x}"'
    last_modified = email.utils.formatdate(int(st.st_mtime), usegmt=True)
    header("ETag", etag)
    header("Last-Modified", last_modified)
    header("Accept-Ranges", "bytes")
    if max_age is not None:
        header("Cache-Control", f"max-age={int(max_age)}")
    env = c.env
    if _not_modified(env, etag, int(st.st_mtime)):
        os.close(fd)
        set_status(304)
        return b""
    if download_name is not None:
        from urllib.parse import quote

        header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(download_name)}")
    # SECURITY: the browser must not guess another type (e.g. HTML) for the bytes.
    # (X-Content-Type-Options: nosniff is on every response already: webmini.ctx)
    byte_range = _range(env, etag, last_modified, size)  # 416 raised here; fd closed by caller
    if content_type is None:
        guessed, encoding = mimetypes.guess_type(relpath)
        content_type = guessed if guessed and not encoding else "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript",
                                                                "application/json"):
            content_type += "; charset=utf-8"
    header("Content-Type", content_type)
    if byte_range is None:
        if c.method == "HEAD":
            os.close(fd)
            header("Content-Length", str(size))
            return b""
        # The app adds Content-Length and uses wsgi.file_wrapper (sendfile).
        return os.fdopen(fd, "rb")
    start, end = byte_range
    set_status(206)
    header("Content-Range", f"bytes {start}-{end}/{size}")
    header("Content-Length", str(end - start + 1))
    if c.method == "HEAD":
        os.close(fd)
        return b""
    return _read_range(os.fdopen(fd, "rb"), start, end - start + 1)


def _not_modified(env: dict[str, Any], etag: str, mtime: int) -> bool:
    """RFC 9110 13.2.2: If-None-Match first; If-Modified-Since only without it."""
    inm = env.get("HTTP_IF_NONE_MATCH")
    if inm is not None:
        if inm.strip() == "*":
            return True
        # Weak comparison: W/"x" matches "x".
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return etag in tags
    ims = env.get("HTTP_IF_MODIFIED_SINCE")
    if ims:
        try:
            since = email.utils.parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False  # an unparsable date is ignored (RFC 9110)
        return since is not None and mtime <= since.timestamp()
    return False


def _range(
    env: dict[str, Any], etag: str, last_modified: str, size: int
) -> tuple[int, int] | None:
    """Return the one (first, last) byte range asked for, or None (all); 416 if beyond the end."""
    value = env.get("HTTP_RANGE")
    if not value:
        return None
    if_range = env.get("HTTP_IF_RANGE")
    if if_range is not None and if_range.strip() not in (etag, last_modified):
        return None  # the client's copy is stale: send the whole file
    m = _RANGE.fullmatch(value.strip(" \t")) if len(value) <= 64 else None
    # Several ranges (multipart/byteranges) or bad syntax: the whole file, as
    # RFC 9110 allows a server to ignore Range.
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # bytes=-N: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise _unsatisfiable(size)
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> errors.HTTPError:
    return errors.HTTPError(
        "416 Range Not Satisfiable",
        {"Content-Range": f"bytes */{size}"},
        "range not satisfiable",
    )


def _read_range(f: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    """Yield ``length`` bytes of ``f`` from ``start``, then close it."""
    try:
        f.seek(start)
        while length > 0:
            chunk = f.read(min(_CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        f.close()
