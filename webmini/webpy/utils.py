"""web.py's ``web.utils``: the small helpers web.py applications import from ``web``.

Behaviour follows web.py 0.76 (checked side by side in tests/test_webpy_utils.py);
``storage``/``storify`` are the core's own objects. Dated parts of web.py's
grab-bag (stdout capture, profiling, markdown) are left out; README says why.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from webmini.storage import Storage, storage, storify

__all__ = [
    "Storage", "storage", "storify", "Counter", "counter", "iters", "rstrips", "lstrips",
    "strips", "safeunicode", "safestr", "utf8", "TimeoutError", "timelimit", "Memoize",
    "memoize", "re_compile", "re_subm", "group", "uniq", "IterBetter", "iterbetter",
    "safeiter", "safewrite", "dictreverse", "dictfind", "dictfindall", "dictincr", "dictadd",
    "requeue", "restack", "listget", "intget", "datestr", "numify", "denumify", "commify",
    "dateify", "nthstr", "cond", "ThreadedDict", "threadeddict", "autoassign", "to36",
    "sendmail",
]

#: What ``web.iters`` lists: the types ``for x in ...`` is expected on.
iters = (list, tuple, set, frozenset)


class Counter(Storage):
    """A Storage that counts: ``c.add(x)`` increments ``c[x]``."""

    def add(self, n: Any) -> None:
        """Count one more ``n``."""
        self.setdefault(n, 0)
        self[n] += 1

    def most(self) -> list[Any]:
        """Return the keys with the highest count."""
        if not self:
            return []
        top = max(self.values())
        return [k for k, v in self.items() if v == top]

    def least(self) -> list[Any]:
        """Return the keys with the lowest count."""
        if not self:
            return []
        low = min(self.values())
        return [k for k, v in self.items() if v == low]

    def percent(self, key: Any) -> float:
        """Return ``key``'s share of the total count, in [0, 1]."""
        return float(self[key]) / sum(self.values())

    def sorted_keys(self) -> list[Any]:
        """Keys by decreasing count."""
        return sorted(self.keys(), key=lambda k: self[k], reverse=True)

    def sorted_values(self) -> list[Any]:
        """Counts in decreasing order."""
        return [self[k] for k in self.sorted_keys()]

    def sorted_items(self) -> list[tuple[Any, Any]]:
        """``(key, count)`` pairs by decreasing count."""
        return [(k, self[k]) for k in self.sorted_keys()]

    def __repr__(self) -> str:
        return "<Counter " + dict.__repr__(self) + ">"


counter = Counter


def _strips(direction: str, text: str, remove: str | Iterable[str]) -> str:
    if isinstance(remove, iters):
        for sub in remove:
            text = _strips(direction, text, sub)
        return text
    assert isinstance(remove, str)
    if direction == "l" and remove and text.startswith(remove):
        return text[len(remove):]
    if direction == "r" and remove and text.endswith(remove):
        return text[: -len(remove)]
    return text


def rstrips(text: str, remove: str | Iterable[str]) -> str:
    """Remove the string ``remove`` (or each of a list) from the end of ``text``."""
    return _strips("r", text, remove)


def lstrips(text: str, remove: str | Iterable[str]) -> str:
    """Remove the string ``remove`` (or each of a list) from the start of ``text``."""
    return _strips("l", text, remove)


def strips(text: str, remove: str | Iterable[str]) -> str:
    """Remove ``remove`` from both ends of ``text``."""
    return rstrips(lstrips(text, remove), remove)


def safeunicode(obj: Any, encoding: str = "utf-8") -> str:
    """Return ``obj`` as text: bytes are decoded as UTF-8, anything else goes through str()."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, bytes):
        return obj.decode(encoding)
    return str(obj)


def safestr(obj: Any, encoding: str = "utf-8") -> Any:
    """Return ``obj`` as a str (Python 3 web.py); iterators are mapped lazily."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, bytes):
        return obj.decode(encoding)
    if isinstance(obj, Iterator):
        return map(safestr, obj)
    return str(obj)


utf8 = safestr


class TimeoutError(Exception):  # noqa: A001 - web.py's name
    """Raised by :func:`timelimit` when the call takes too long."""


def timelimit(timeout: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: raise :class:`TimeoutError` when the call takes more than ``timeout`` s.

    The call runs in a thread (a greenlet once gevent has patched threading);
    like web.py, the call itself is not interrupted, only abandoned.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kw: Any) -> Any:
            box: dict[str, Any] = {}

            def run() -> None:
                try:
                    box["result"] = function(*args, **kw)
                except BaseException as exc:  # handed to the caller below
                    box["error"] = exc

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            worker.join(timeout)
            if worker.is_alive():
                raise TimeoutError("took too long")
            if "error" in box:
                raise box["error"]
            return box.get("result")

        return wrapped

    return decorate


class Memoize:
    """Cache a function's results by arguments; ``expires`` seconds (0: forever)."""

    def __init__(self, func: Callable[..., Any], expires: float | None = None,
                 background: bool = True) -> None:
        self.func = func
        self.cache: dict[Any, tuple[Any, float]] = {}
        self.expires = expires
        self.background = background
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kw: Any) -> Any:
        """Return the cached result, computing it when missing or expired."""
        key = (args, tuple(sorted(kw.items())))
        hit = self.cache.get(key)
        if hit is not None and (not self.expires or time.time() - hit[1] < self.expires):
            return hit[0]
        with self.lock:
            hit = self.cache.get(key)
            if hit is not None and (not self.expires or time.time() - hit[1] < self.expires):
                return hit[0]
            value = self.func(*args, **kw)
            self.cache[key] = (value, time.time())
            return value


memoize = Memoize
#: ``re.compile`` with a cache (the ``re`` module keeps one itself).
re_compile = re.compile


def re_subm(pat: str | re.Pattern[str], repl: Any, string: str) -> tuple[str, Any]:
    """``re.sub`` that also returns the last match object."""
    compiled = re.compile(pat) if isinstance(pat, str) else pat
    box: list[Any] = [None]

    def keep(m: re.Match[str]) -> str:
        box[0] = m
        return m.expand(repl) if isinstance(repl, str) else str(repl(m))

    return compiled.sub(keep, string), box[0]


def group(seq: Iterable[Any], size: int) -> Iterator[Any]:
    """Yield successive chunks of ``size`` items (slices of a sequence, else lists)."""
    if isinstance(seq, Sequence):
        for start in range(0, len(seq), size):
            yield seq[start:start + size]
        return
    it = iter(seq)
    while True:
        chunk = []
        for _ in range(size):
            try:
                chunk.append(next(it))
            except StopIteration:
                if chunk:
                    yield chunk
                return
        yield chunk


def uniq(seq: Iterable[Any], key: Callable[[Any], Any] | None = None) -> list[Any]:
    """Return the items of ``seq`` without repeats, in first-seen order."""
    seen: set[Any] = set()
    out = []
    for item in seq:
        k = key(item) if key else item
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


class IterBetter:
    """An iterator that can be indexed forwards and tested for emptiness."""

    def __init__(self, iterator: Iterable[Any]) -> None:
        self.i = iter(iterator)
        self.c = 0
        self._peeked: list[Any] = []

    def __iter__(self) -> Iterator[Any]:
        while True:
            if self._peeked:
                item = self._peeked.pop(0)
            else:
                try:
                    item = next(self.i)
                except StopIteration:
                    return
            self.c += 1
            yield item

    def first(self, default: Any = None) -> Any:
        """Return the next item, or ``default`` when exhausted."""
        try:
            return next(iter(self))
        except StopIteration:
            return default

    def list(self) -> list[Any]:
        """Return the remaining items as a list."""
        return list(iter(self))

    def __getitem__(self, i: int) -> Any:
        if i < self.c:
            raise IndexError("already passed " + str(i))
        try:
            while i > self.c:
                self.first_or_raise()
            return self.first_or_raise()
        except StopIteration:
            raise IndexError(str(i)) from None

    def first_or_raise(self) -> Any:
        """Return the next item or raise StopIteration."""
        return next(iter(self))

    def __bool__(self) -> bool:
        if self._peeked:
            return True
        try:
            self._peeked.append(next(self.i))
        except StopIteration:
            return False
        return True


iterbetter = IterBetter


def safeiter(it: Iterable[Any], cleanup: Callable[[Exception], Any] | None = None,
             ignore_errors: bool = True) -> Iterator[Any]:
    """Iterate ``it``, passing errors to ``cleanup`` and skipping them when ``ignore_errors``."""
    iterator = iter(it)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            if cleanup:
                cleanup(exc)
            if not ignore_errors:
                raise


def safewrite(filename: str, content: str | bytes) -> None:
    """Write ``content`` to ``filename`` atomically (temporary file, then rename)."""
    import os
    import tempfile

    directory = os.path.dirname(os.path.abspath(filename))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".safewrite-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.replace(tmp, filename)
    except BaseException:
        os.unlink(tmp)
        raise


def dictreverse(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """Return ``{value: key}``."""
    return {v: k for k, v in mapping.items()}


def dictfind(dictionary: dict[Any, Any], element: Any) -> Any:
    """Return a key whose value is ``element`` (None if there is none)."""
    for key, value in dictionary.items():
        if element is value:
            return key
    return None


def dictfindall(dictionary: dict[Any, Any], element: Any) -> list[Any]:
    """Return every key whose value is ``element``."""
    return [k for k, v in dictionary.items() if element is v]


def dictincr(dictionary: dict[Any, Any], element: Any) -> Any:
    """Increment ``dictionary[element]`` (from 0) and return the new value."""
    dictionary.setdefault(element, 0)
    dictionary[element] += 1
    return dictionary[element]


def dictadd(*dicts: dict[Any, Any]) -> dict[Any, Any]:
    """Return a new dict with every pair of ``dicts``, later ones winning."""
    result: dict[Any, Any] = {}
    for d in dicts:
        result.update(d)
    return result


def requeue(queue: list[Any], index: int = -1) -> Any:
    """Move the item at ``index`` to the front of ``queue``; return it."""
    x = queue.pop(index)
    queue.insert(0, x)
    return x


def restack(stack: list[Any], index: int = 0) -> Any:
    """Move the item at ``index`` to the end (top) of ``stack``; return it."""
    x = stack.pop(index)
    stack.append(x)
    return x


def listget(lst: Any, ind: int, default: Any = None) -> Any:
    """Return ``lst[ind]``, or ``default`` when the index is out of range."""
    if len(lst) - 1 < ind:
        return default
    return lst[ind]


def intget(integer: Any, default: Any = None) -> Any:
    """Return ``int(integer)``, or ``default`` when it is not an integer."""
    try:
        return int(integer)
    except (TypeError, ValueError):
        return default


def _agohence(n: int, what: str, divisor: int | None = None) -> str:
    if divisor:
        n = n // divisor
    out = f"{abs(n)} {what}" + ("" if abs(n) == 1 else "s")
    return out + (" from now" if n < 0 else " ago")


def datestr(then: Any, now: Any = None) -> str:
    """Say how long ago (or from now) ``then`` is: ``"2 hours ago"``, ``"January 12"``."""
    if not then:
        return ""
    if not now:
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    if type(then) is datetime.date:
        then = datetime.datetime(then.year, then.month, then.day)
    delta = now - then
    day = 86400
    seconds = int(delta.days * day + delta.seconds + delta.microseconds * 1e-06)
    days = abs(seconds) // day * (-1 if seconds < 0 else 1)
    if days:
        if abs(days) < 4:
            return _agohence(days, "day")
        out: str = then.strftime("%B %d").replace(" 0", "  ")
        if then.year != now.year or days < 0:
            out += f", {then.year}"
        return out
    if seconds:
        if abs(seconds) > 3600:
            return _agohence(seconds, "hour", 3600)
        if abs(seconds) > 60:
            return _agohence(seconds, "minute", 60)
        return _agohence(seconds, "second")
    micro = delta.microseconds
    if delta.days:
        micro = int(delta.microseconds - 1e6)
    if abs(micro) > 1000:
        return _agohence(micro, "millisecond", 1000)
    return _agohence(micro, "microsecond")


def numify(string: Any) -> str:
    """Keep only the digits of ``string``: ``"(123) 456"`` -> ``"123456"``."""
    return "".join(c for c in str(string) if c.isdigit())


def denumify(string: str, pattern: str) -> str:
    """Lay the digits of ``string`` into the ``X``s of ``pattern``."""
    out = []
    digits = iter(string)
    for c in pattern:
        out.append(next(digits) if c == "X" else c)
    return "".join(out)


def commify(n: Any) -> str | None:
    """Add thousands separators: ``1234567.5`` -> ``"1,234,567.5"`` (None stays None)."""
    if n is None:
        return None
    n = str(n).strip()
    sign = ""
    if n.startswith("-"):
        sign, n = "-", n[1:].strip()
    whole, _, frac = n.partition(".")
    parts: list[str] = []
    while len(whole) > 3:
        parts.insert(0, whole[-3:])
        whole = whole[:-3]
    parts.insert(0, whole)
    return sign + ",".join(parts) + ("." + frac if frac else "")


def dateify(datestring: str) -> str:
    """Lay 14 digits out as ``"YYYY-MM-DD HH:MM:SS"`` (web.py's ``denumify`` pattern)."""
    return denumify(datestring, "XXXX-XX-XX XX:XX:XX")


def nthstr(n: int) -> str:
    """Return the ordinal: ``1`` -> ``"1st"``, ``12`` -> ``"12th"``, ``22`` -> ``"22nd"``."""
    assert n >= 0
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}" + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def cond(predicate: Any, consequence: Any, alternative: Any = None) -> Any:
    """Return ``consequence`` if ``predicate`` else ``alternative``."""
    return consequence if predicate else alternative


class ThreadedDict(threading.local):
    """A dict-like object local to each thread (each greenlet once gevent patched)."""

    def __getattr__(self, key: str) -> Any:
        raise AttributeError(key)

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def __delitem__(self, key: str) -> None:
        del self.__dict__[key]

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        """Return ``self[key]`` or ``default``."""
        return self.__dict__.get(key, default)

    def keys(self) -> Any:
        """The keys set in this thread."""
        return self.__dict__.keys()

    def items(self) -> Any:
        """The pairs set in this thread."""
        return self.__dict__.items()

    def values(self) -> Any:
        """The values set in this thread."""
        return self.__dict__.values()

    def clear(self) -> None:
        """Forget this thread's values."""
        self.__dict__.clear()

    def update(self, *args: Any, **kw: Any) -> None:
        """Update this thread's values."""
        self.__dict__.update(*args, **kw)


threadeddict = ThreadedDict


def autoassign(self: Any, locals: dict[str, Any]) -> None:  # noqa: A002 - web.py's name
    """Set each local (but ``self``) as an attribute of ``self``."""
    for key, value in locals.items():
        if key != "self":
            setattr(self, key, value)


def to36(q: int) -> str:
    """Return ``q`` in base 36: ``35`` -> ``"z"``."""
    if q < 0:
        raise ValueError("must supply a positive integer")
    letters = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        q, r = divmod(q, 36)
        out = letters[r] + out
        if q == 0:
            return out


def sendmail(*args: Any, **kw: Any) -> None:
    """Send an email over SMTP (see :func:`webmini.webpy.mail.sendmail`)."""
    from webmini.webpy.mail import sendmail as _sendmail

    _sendmail(*args, **kw)

