"""Sessions: a web.py-style processor keeping per-visitor data in memcached or a cookie.

``session = Session(app, CacheStore(cache), initializer={...}, secret=...)``
registers itself as a processor; handlers read and write ``session.user``
(or ``web.ctx.session.user``). The cookie carries a random id (or, with
``CookieStore``, the data itself), signed with HMAC-SHA256; a cookie whose
signature, age or id does not check out gets a fresh session. A session is
written back only when its data changed (or half its lifetime has passed).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from webmini.ctx import current
from webmini.errors import HTTPError, ServiceUnavailable
from webmini.request import cookies
from webmini.response import setcookie
from webmini.storage import Storage

__all__ = ["Session", "CacheStore", "CookieStore", "SessionStore", "StoreUnavailable"]

log = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 16
MAX_COOKIE_LENGTH = 4000  # browsers keep at least 4096 bytes per cookie, name included


class StoreUnavailable(Exception):
    """The session store could not keep the data (raised by ``SessionStore.save``)."""


class SessionStore(Protocol):
    """Where session data lives; ``token`` is what the (signed) cookie carries."""

    def load(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """Return ``(session_id, data)`` for a token, or None if unknown."""

    def save(self, session_id: str, data: dict[str, Any], timeout: int) -> str:
        """Store ``data`` for ``timeout`` seconds; return the token (StoreUnavailable if not)."""

    def delete(self, session_id: str) -> None:
        """Forget a session."""


class CacheStore:
    """Session data in the memcached ring (``stores.cache.Cache``); the cookie holds the id."""

    def __init__(self, cache: Any, prefix: str = "session:") -> None:
        self.cache = cache
        self.prefix = prefix

    def load(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """Return the stored data for id ``token`` (a miss when expired or the node is down)."""
        data = self.cache.get(self.prefix + token)
        return (token, data) if isinstance(data, dict) else None

    def save(self, session_id: str, data: dict[str, Any], timeout: int) -> str:
        """Write the data with an expiry of ``timeout`` seconds (StoreUnavailable if not stored)."""
        if not self.cache.set(self.prefix + session_id, data, expire=timeout):
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

    def load(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """Decode ``id.payload`` (its signature was already checked)."""
        session_id, _, payload = token.partition(".")
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            return None
        return (session_id, data) if isinstance(data, dict) else None

    def save(self, session_id: str, data: dict[str, Any], timeout: int) -> str:
        """Encode the data into the token."""
        payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return session_id + "." + _b64(payload)

    def delete(self, session_id: str) -> None:
        """Nothing to delete: the cookie is expired by the session."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _State:
    """One request's view of its session."""

    __slots__ = ("session_id", "data", "snapshot", "is_new", "issued", "killed", "retired")

    def __init__(self, session_id: str, data: Storage, is_new: bool, issued: float) -> None:
        self.session_id = session_id
        self.data = data
        self.snapshot = _fingerprint(data)
        self.is_new = is_new
        self.issued = issued
        self.killed = False
        self.retired: list[str] = []  # ids replaced by regenerate(), deleted on save


def _vary_cookie(c: Any) -> None:
    """Add ``Vary: Cookie`` to the response unless it already varies on Cookie."""
    for name, value in c.headers:
        if name.lower() == "vary" and "cookie" in value.lower():
            return
    c.headers.append(("Vary", "Cookie"))


def _fingerprint(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def new_session_id() -> str:
    """Return a random session id (256 bits from ``secrets``)."""
    return secrets.token_urlsafe(32)


class SessionDataAccess:
    """Item and attribute access to the current request's session data (shared by both Sessions)."""

    __slots__ = ()

    def _state(self) -> Any:
        raise NotImplementedError

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


class Session(SessionDataAccess):
    """Per-visitor data for an application, saved by a processor when it changes."""

    def __init__(
        self,
        app: Any,
        store: SessionStore,
        initializer: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        *,
        secret: str | bytes | None = None,
        cookie_name: str = "webmini_session",
        timeout: int = 86400,
        cookie_path: str = "/",
        cookie_domain: str | None = None,
        secure: bool | None = None,
        samesite: str = "Lax",
    ) -> None:
        # SECURITY: an unsigned or weakly signed session cookie lets anyone
        # forge ids (or, with CookieStore, data): refuse to run without a secret.
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"Session needs secret= of at least {MIN_SECRET_LENGTH} characters "
                "(e.g. secrets.token_urlsafe(32), kept out of the source)"
            )
        key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_initializer", initializer)
        object.__setattr__(self, "_cookie_name", cookie_name)
        object.__setattr__(self, "_timeout", int(timeout))
        object.__setattr__(self, "_cookie_path", cookie_path)
        object.__setattr__(self, "_cookie_domain", cookie_domain)
        object.__setattr__(self, "_secure", secure)
        object.__setattr__(self, "_samesite", samesite)
        app.add_processor(self._processor)

    # -- attribute access: the current request's data -------------------------

    def _state(self) -> _State:
        state: _State | None = current().session_state
        if state is None:
            raise RuntimeError("the session is only available inside a request of its app")
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
        state.snapshot = ""  # force a save
        return state.session_id

    def kill(self) -> None:
        """End the session: its stored data is deleted and the cookie expired."""
        state = self._state()
        state.killed = True
        state.data.clear()

    # -- the processor ------------------------------------------------------

    def _processor(self, handler: Callable[[], Any]) -> Any:
        c = current()
        state = self._load()
        c.session_state = state
        c["session"] = state.data  # web.ctx.session, the user's own attribute
        # SECURITY: the answer may depend on the session cookie (who is
        # logged in): a shared cache must not serve it to another visitor.
        # Every response of the app says so, since any may read the session.
        _vary_cookie(c)
        try:
            result = handler()
        except HTTPError as e:
            if not str(e.status).startswith("5"):
                self._save(state)  # a redirect after login must keep the session
            _vary_cookie(c)
            raise
        if not str(c.status).startswith("5"):
            # An unhandled error (500) leaves the stored session as it was.
            self._save(state)
        return result

    def _load(self) -> _State:
        now = time.time()
        raw = cookies().get(self._cookie_name)
        if raw:
            verified = self._verify(raw, now)
            if verified is not None:
                token, issued = verified
                loaded = self._store.load(token)
                if loaded is not None:
                    session_id, data = loaded
                    return _State(session_id, Storage(data), False, issued)
        # SECURITY: a missing, forged, expired or unknown id never gets adopted:
        # the visitor gets a fresh random id.
        return _State(new_session_id(), Storage(self._initial_data()), True, now)

    def _initial_data(self) -> dict[str, Any]:
        init = self._initializer
        if init is None:
            return {}
        if callable(init):
            return dict(init())
        return copy.deepcopy(dict(init))

    def _save(self, state: _State) -> None:
        now = time.time()
        if state.killed:
            for sid in [*state.retired, state.session_id]:
                self._store.delete(sid)
            if not state.is_new:
                self._set_cookie("", max_age=0)
            return
        changed = _fingerprint(state.data) != state.snapshot
        stale = not state.is_new and now - state.issued > self._timeout / 2
        if not (changed or stale):
            return
        for sid in state.retired:
            self._store.delete(sid)
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
        value = self._sign(token, now)
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
            secure=secure, httponly=True, samesite=self._samesite, max_age=max_age,
        )

    # -- signing ------------------------------------------------------------

    def _mac(self, token: str, issued: str) -> str:
        message = f"webmini.session|{self._cookie_name}|{token}|{issued}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def _sign(self, token: str, now: float) -> str:
        issued = str(int(now))
        return f"{token}.{issued}.{self._mac(token, issued)}"

    def _verify(self, value: str, now: float) -> tuple[str, float] | None:
        token, _, rest = value.rpartition(".")
        token, _, issued = token.rpartition(".")
        if not token or not (issued.isascii() and issued.isdigit()):
            return None
        # SECURITY: constant-time comparison; the issue time is signed too, so
        # an old cookie cannot be made to look recent.
        if not hmac.compare_digest(self._mac(token, issued).encode(), rest.encode()):
            return None
        if now - int(issued) > self._timeout:
            return None
        return token, float(issued)
