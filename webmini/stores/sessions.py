"""Sessions: per-visitor data kept in memcached or a signed cookie, and the one engine behind them.

``session = Session(app, CacheStore(cache), initializer={...}, secret=...)``
registers itself as a processor; handlers read and write ``session.user``
(or ``web.ctx.session.user``). The cookie carries a random id (or, with
``CookieStore``, the data itself), signed with HMAC-SHA256; a cookie whose
signature, age or id does not check out gets a fresh session. A session is
written back only when its data changed (or half its lifetime has passed).

web.py's ``web.session`` (``webmini.webpy.session``) is a thin layer over this
module, so both share one of each: the id scheme (``new_session_id``), the
signer (``Signer``), the data codec (``encode``/``decode``: JSON, never
pickle) and the store interface (``SessionStore``).
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from webmini.ctx import RequestContext, current, current_or_none
from webmini.errors import HTTPError, ServiceUnavailable
from webmini.request import cookies
from webmini.response import setcookie
from webmini.storage import Storage

__all__ = [
    "CacheStore", "CookieStore", "Session", "SessionStore", "Signer", "StoreUnavailable",
    "decode", "encode", "new_session_id", "valid_session_id",
]

log = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 16
MAX_COOKIE_LENGTH = 4000  # browsers keep at least 4096 bytes per cookie, name included


# -- ids ------------------------------------------------------------------------

# SECURITY: only hex ids of a sane length ever reach a store: no path
# separators, dots, spaces or NULs for a file name, a cache key or a row.
_SESSION_ID = re.compile(r"[0-9a-fA-F]{32,128}")


def new_session_id() -> str:
    """Return a new random session id: 160 bits from ``secrets``, as 40 hex digits."""
    return secrets.token_hex(20)


def valid_session_id(session_id: Any) -> bool:
    """Return whether ``session_id`` has the shape of a session id."""
    return isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id) is not None


# -- the data codec ---------------------------------------------------------------

_TAG = "__webmini_type__"


def _plain(obj: Any) -> Any:
    """``obj`` as JSON-ready values; datetimes, dates, sets, tuples and bytes tagged."""
    if obj is None or isinstance(obj, str | int | float):
        return obj
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(x) for x in obj]
    if isinstance(obj, tuple):
        return {_TAG: "tuple", "v": [_plain(x) for x in obj]}
    if isinstance(obj, datetime.datetime):
        return {_TAG: "datetime", "v": obj.isoformat()}
    if isinstance(obj, datetime.date):
        return {_TAG: "date", "v": obj.isoformat()}
    if isinstance(obj, set | frozenset):
        return {_TAG: "set", "v": [_plain(x) for x in obj]}
    if isinstance(obj, bytes):
        return {_TAG: "bytes", "v": base64.b64encode(obj).decode("ascii")}
    raise TypeError(f"a session cannot hold {type(obj).__name__} (JSON-compatible data only)")


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


def _restore(obj: Any) -> Any:
    """The inverse of ``_plain`` for values a JSON parser already returned."""
    if isinstance(obj, dict):
        return _hook({k: _restore(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_restore(x) for x in obj]
    return obj


def encode(data: dict[str, Any]) -> str:
    """Serialise session data as JSON text (TypeError for what JSON cannot hold)."""
    return json.dumps(_plain(data), separators=(",", ":"))


def decode(text: str | bytes) -> dict[str, Any]:
    """Parse :func:`encode`'s JSON; ValueError for anything else (e.g. web.py's pickles)."""
    data = json.loads(text, object_hook=_hook)
    if not isinstance(data, dict):
        raise ValueError("session data is not a JSON object")
    return data


def _fingerprint(data: dict[str, Any]) -> str | None:
    """The data as JSON, to tell later whether it changed (None: it cannot be encoded)."""
    try:
        return encode(data)
    except (TypeError, ValueError):
        return None


# -- the signer -----------------------------------------------------------------

# SECURITY: a signed value is short and plain (ids, base64url, digits, dots):
# anything else is refused before any HMAC work.
_SIGNED = re.compile(r"[A-Za-z0-9_.\-]{1,4000}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 over a cookie's token and its issue time: ``token.issued.mac``."""

    __slots__ = ("_key", "_purpose")

    def __init__(self, key: bytes, purpose: str) -> None:
        self._key, self._purpose = key, purpose

    def _mac(self, token: str, issued: str) -> str:
        message = f"webmini.session|{self._purpose}|{token}|{issued}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def sign(self, token: str, now: float) -> str:
        """Return ``token`` with its issue time and their MAC."""
        issued = str(int(now))
        return f"{token}.{issued}.{self._mac(token, issued)}"

    def verify(self, value: str, now: float, max_age: float) -> tuple[str, float] | None:
        """Return ``(token, issued)`` if ``value`` is signed and younger than ``max_age``."""
        if not _SIGNED.fullmatch(value):
            return None
        token, _, mac = value.rpartition(".")
        token, _, issued = token.rpartition(".")
        if not token or not (issued.isascii() and issued.isdigit()):
            return None
        # SECURITY: constant-time comparison; the issue time is signed too, so
        # an old cookie cannot be made to look recent.
        if not hmac.compare_digest(self._mac(token, issued).encode(), mac.encode()):
            return None
        if now - int(issued) > max_age:
            return None
        return token, float(issued)


# -- stores ---------------------------------------------------------------------


class StoreUnavailable(Exception):
    """The session store could not keep the data (raised by ``SessionStore.save``)."""


class SessionStore(Protocol):
    """Where session data lives; ``token`` is what the cookie carries.

    A store whose tokens need no signature (a random id looked up server-side)
    says so with ``signed = False``; without it the cookie is signed. A store
    that keeps expired data may have ``cleanup(timeout)``.
    """

    def load(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """Return ``(session_id, data)`` for a token, or None if unknown."""

    def save(self, session_id: str, data: dict[str, Any], timeout: int) -> str:
        """Store ``data`` for ``timeout`` seconds; return the token (StoreUnavailable if not)."""

    def delete(self, session_id: str) -> None:
        """Forget a session."""


class CacheStore:
    """Session data in the memcached ring (``stores.cache.Cache``); the cookie holds the id."""

    signed = True

    def __init__(self, cache: Any, prefix: str = "session:") -> None:
        self.cache = cache
        self.prefix = prefix

    def load(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """Return the stored data for id ``token`` (a miss when expired or the node is down)."""
        if not valid_session_id(token):
            return None
        data = self.cache.get(self.prefix + token)
        return (token, _restore(data)) if isinstance(data, dict) else None

    def save(self, session_id: str, data: dict[str, Any], timeout: int) -> str:
        """Write the data with an expiry of ``timeout`` seconds (StoreUnavailable if not stored)."""
        if not self.cache.set(self.prefix + session_id, _plain(data), expire=timeout):
            raise StoreUnavailable("the session cache did not store the session")
        return session_id

    def delete(self, session_id: str) -> None:
        """Delete the stored data."""
        self.cache.delete(self.prefix + session_id)


class CookieStore:
    """Session data inside the signed cookie: no server state, ~4 KB at most.

    The data is signed, not encrypted: the visitor can read it. A killed
    session's old cookie stays valid until it expires (nothing to revoke).
    """

    signed = True

    def load(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """Decode ``id.payload`` (its signature was already checked)."""
        session_id, _, payload = token.partition(".")
        if not valid_session_id(session_id):
            return None
        try:
            return session_id, decode(_unb64(payload))
        except ValueError:
            return None

    def save(self, session_id: str, data: dict[str, Any], timeout: int) -> str:
        """Encode the data into the token."""
        return session_id + "." + _b64(encode(data).encode("utf-8"))

    def delete(self, session_id: str) -> None:
        """Nothing to delete: the cookie is expired by the session."""


# -- the engine -------------------------------------------------------------------


class SessionState:
    """One request's view of one session."""

    __slots__ = ("session_id", "data", "snapshot", "is_new", "issued", "killed", "retired",
                 "had_cookie", "send_cookie", "closed")

    def __init__(self, session_id: str, data: Storage, is_new: bool, issued: float | None,
                 had_cookie: bool) -> None:
        self.session_id = session_id
        self.data = data
        self.snapshot: str | None = None  # set once loaded and initialised
        self.is_new = is_new
        self.issued = issued  # when the cookie was signed (None: an unsigned id)
        self.killed = False
        self.retired: list[str] = []  # ids replaced by regenerate(), deleted on save
        self.had_cookie = had_cookie
        self.send_cookie = True
        self.closed = False  # a killed session already expired: nothing more to send


def _vary_cookie(c: Any) -> None:
    """Add ``Vary: Cookie`` to the response unless it already varies on Cookie."""
    for name, value in c.headers:
        if name.lower() == "vary" and "cookie" in value.lower():
            return
    c.headers.append(("Vary", "Cookie"))


class Session:
    """Per-visitor data for an application, saved by a processor when it changes.

    ``refresh``: an unchanged session is written again once its cookie is this
    old (default: half of ``timeout``; always for a store of unsigned ids).
    ``cleanup_interval``: how often the store's ``cleanup(timeout)`` runs, if
    it has one (None: never; memcached expires entries itself).
    """

    #: Also save after an unhandled error or a 5xx answer (web.py does).
    _save_on_error = False
    #: Make the data ``web.ctx.session`` for the request.
    _in_ctx = True

    def __init__(
        self,
        app: Any,
        store: SessionStore,
        initializer: dict[str, Any] | Callable[[], Any] | None = None,
        *,
        secret: str | bytes | None = None,
        cookie_name: str = "webmini_session",
        timeout: float = 86400,
        cookie_path: str | None = "/",
        cookie_domain: str | None = None,
        secure: bool | None = None,
        samesite: str | None = "Lax",
        httponly: bool = True,
        refresh: float | None = None,
        cleanup_interval: float | None = None,
    ) -> None:
        signer = None
        if getattr(store, "signed", True):
            # SECURITY: an unsigned or weakly signed session cookie lets anyone
            # forge ids (or, with CookieStore, data): refuse to run without a secret.
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"Session needs secret= of at least {MIN_SECRET_LENGTH} characters "
                    "(e.g. secrets.token_urlsafe(32), kept out of the source)"
                )
            key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
            signer = Signer(key, cookie_name)
        own = object.__setattr__
        own(self, "_signer", signer)
        own(self, "_store", store)
        own(self, "_initializer", initializer)
        own(self, "_cookie_name", cookie_name)
        own(self, "_timeout", int(timeout))
        own(self, "_cookie_path", cookie_path)
        own(self, "_cookie_domain", cookie_domain)
        own(self, "_secure", secure)
        own(self, "_samesite", samesite)
        own(self, "_httponly", httponly)
        own(self, "_refresh", timeout / 2 if refresh is None else refresh)
        own(self, "_cleanup_interval", cleanup_interval)
        own(self, "_last_cleanup", 0.0)
        if app is not None:
            app.add_processor(self._processor)

    # -- attribute access: the current request's data -------------------------

    def _state(self) -> SessionState:
        c = current_or_none()
        states = c.session_state if c is not None else None
        state = states.get(id(self)) if states else None
        if state is None:
            return self._no_state(c)
        return state  # type: ignore[no-any-return]

    def _no_state(self, c: RequestContext | None) -> SessionState:
        """What the session is where its processor did not run."""
        raise RuntimeError("the session is only available inside a request of its app")

    def _blank(self, c: RequestContext) -> SessionState:
        """A new empty session for request ``c``, never loaded nor initialised."""
        state = SessionState(new_session_id(), Storage(), True, None, False)
        self._bind(c, state)
        return state

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._state().data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self._state().data[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._state().data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._state().data[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._state().data[name] = value

    def __delitem__(self, name: str) -> None:
        del self._state().data[name]

    def __contains__(self, name: str) -> bool:
        return name in self._state().data

    def get(self, name: str, default: Any = None) -> Any:
        """Return session value ``name`` or ``default``."""
        return self._state().data.get(name, default)

    @property
    def session_id(self) -> str:
        """The current session's id."""
        return self._state().session_id

    @property
    def data(self) -> Storage:
        """The current session's data (also ``web.ctx.session``)."""
        return self._state().data

    def regenerate(self) -> str:
        """Give the session a new id, keeping its data (call on login); return the id."""
        # SECURITY: a new id at each privilege change defeats session fixation.
        state = self._state()
        if not state.is_new:
            state.retired.append(state.session_id)
        state.session_id = new_session_id()
        state.snapshot = None  # force a save
        return state.session_id

    def kill(self) -> None:
        """End the session: its stored data is deleted and the cookie expired."""
        state = self._state()
        state.killed = True
        state.data.clear()

    # -- the processor ------------------------------------------------------

    def _processor(self, handler: Callable[[], Any]) -> Any:
        c = current()
        self._cleanup()
        state = self._load(c)
        # SECURITY: the answer may depend on the session cookie (who is
        # logged in): a shared cache must not serve it to another visitor.
        # Every response of the app says so, since any may read the session.
        _vary_cookie(c)
        try:
            result = handler()
        except HTTPError as e:
            if self._save_on_error or not str(e.status).startswith("5"):
                self._save(state)  # a redirect after login must keep the session
            raise
        except BaseException:
            if self._save_on_error:
                self._save(state)
            raise
        finally:
            _vary_cookie(c)
        if self._save_on_error or not str(c.status).startswith("5"):
            # An unhandled error (500) leaves the stored session as it was.
            self._save(state)
        return result

    def _load(self, c: RequestContext) -> SessionState:
        now = time.time()
        raw = cookies().get(self._cookie_name)
        state = None
        if raw:
            opened = self._open_cookie(raw, now)
            if opened is not None:
                token, issued = opened
                loaded = self._store.load(token)
                if loaded is not None:
                    session_id, data = loaded
                    state = SessionState(session_id, Storage(data), False, issued, True)
        if state is None:
            # SECURITY: a missing, forged, expired or unknown id never gets
            # adopted: the visitor gets a fresh random id.
            state = SessionState(new_session_id(), Storage(), True, now, bool(raw))
        self._bind(c, state)
        if state.is_new:
            self._initialize(state)
        self._loaded(state)
        state.snapshot = _fingerprint(state.data)
        return state

    def _open_cookie(self, raw: str, now: float) -> tuple[str, float | None] | None:
        """The token a cookie carries and when it was signed, or None if it does not check out."""
        if self._signer is None:
            return (raw, None) if valid_session_id(raw) else None
        return self._signer.verify(raw, now, self._timeout)

    def _bind(self, c: RequestContext, state: SessionState) -> None:
        states = c.session_state
        if states is None:
            states = c.session_state = {}
        states[id(self)] = state
        if self._in_ctx:
            c["session"] = state.data  # web.ctx.session, the user's own attribute

    def _initialize(self, state: SessionState) -> None:
        init = self._initializer
        if isinstance(init, dict):
            state.data.update(copy.deepcopy(init))
        elif callable(init):
            extra = init()  # web.py's initializer may set the session itself
            if isinstance(extra, dict):
                state.data.update(extra)

    def _loaded(self, state: SessionState) -> None:
        """Called once a request's session is loaded or made (web.py adds its keys here)."""

    def _save(self, state: SessionState) -> None:
        if not state.send_cookie or state.closed:
            return
        now = time.time()
        if state.killed:
            for sid in [*state.retired, state.session_id]:
                self._store.delete(sid)
            state.retired = []
            state.closed = True
            if state.had_cookie:
                self._set_cookie("", max_age=0)
            return
        fingerprint = _fingerprint(state.data)
        changed = fingerprint is None or fingerprint != state.snapshot
        stale = not state.is_new and (state.issued is None or now - state.issued >= self._refresh)
        if not (changed or stale):
            # SECURITY: a new session nobody wrote to is neither stored nor sent
            # (Django's and Flask's rule): cookieless requests cost no file, row
            # or memory; the first change stores it and sends the cookie.
            return
        for sid in state.retired:
            self._store.delete(sid)
        state.retired = []
        try:
            token = self._store.save(state.session_id, dict(state.data), self._timeout)
        except StoreUnavailable as exc:
            if not changed:
                # Only a refresh of unchanged data: the old cookie still works.
                log.warning("session %s… not refreshed: %s", state.session_id[:8], exc)
                return
            # A login (or any change) that was not stored must not look like a
            # success: the next request would find no session.
            raise ServiceUnavailable("the session store is unavailable; try again",
                                     {"Retry-After": "5"}) from exc
        state.snapshot, state.is_new, state.issued = fingerprint, False, now
        value = self._signer.sign(token, now) if self._signer is not None else token
        if len(value) > MAX_COOKIE_LENGTH:
            raise ValueError(f"session cookie of {len(value)} bytes is too large")
        self._set_cookie(value)

    def _set_cookie(self, value: str, max_age: int | None = None) -> None:
        secure = self._secure
        if secure is None:
            secure = current().protocol == "https"
        setcookie(
            self._cookie_name, value,
            expires=-1 if max_age == 0 else "",
            domain=self._cookie_domain, path=self._cookie_path,
            secure=bool(secure), httponly=self._httponly, samesite=self._samesite,
            max_age=max_age,
        )

    def _cleanup(self) -> None:
        interval = self._cleanup_interval
        if interval is None:
            return
        now = time.time()
        if now - self._last_cleanup >= interval:
            object.__setattr__(self, "_last_cleanup", now)
            cleanup = getattr(self._store, "cleanup", None)
            if cleanup is not None:
                cleanup(self._timeout)
