"""``secure_filename``: a client-supplied file name made safe to use as a local file name."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["secure_filename"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# Names Windows maps to devices whatever the extension (a share may be Windows).
_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(10)] + [f"LPT{i}" for i in range(10)]
)
_MAX_LENGTH = 200


def secure_filename(filename: str | None) -> str:
    """Return ``filename`` reduced to ``[A-Za-z0-9_.-]``, no path, no leading dot; may be ``""``.

    ``"../../etc/passwd"`` -> ``"passwd"``, ``"C:\\\\x\\\\évil .php"`` -> ``"evil_.php"``,
    ``".htaccess"`` -> ``"htaccess"``. The result never names a directory,
    a hidden file or a device; it is at most 200 characters (the extension
    kept). An empty result means there was nothing usable: pick a name
    yourself (a random one is best; never trust the client's for uniqueness).
    """
    if not filename:
        return ""
    # SECURITY: the client decides this string. Only its last path
    # component counts, for both separators (a browser on Windows sends
    # "C:\\...\\name"), and every byte outside a small safe set goes.
    name = re.split(r"[/\\\\]", filename.replace("\x00", ""))[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = _UNSAFE.sub("_", name.strip())
    name = name.strip("._-")  # no ".", "..", hidden files or "-rf"-like names
    if not name:
        return ""
    stem, dot, ext = name.partition(".")
    if stem.upper() in _DEVICES:
        name = "_" + name
    if len(name) > _MAX_LENGTH:
        ext = name.rsplit(".", 1)[1][:16] if "." in name else ""
        name = name[:_MAX_LENGTH - len(ext) - 1].rstrip("._-") + ("." + ext if ext else "")
    return name
