"""web.py's ``web.session``: ``Session(app, store, initializer=)`` and its stores.

Ported code keeps working: ``session.user = ...``, ``session.get()``,
``session.kill()``, ``web.config.session_parameters``, ``DiskStore``,
``DBStore`` over ``web.database``. What changes is what an attacker can do:

- ids are 160 random bits from ``secrets`` (web.py hashes time, ip and a
  secret that ships in its source); an id the store does not know is never
  adopted, and ``session.regenerate()`` gives a new id on login;
- the cookie is ``HttpOnly``, ``SameSite=Lax`` and, on https, ``Secure``;
- a session is stored (and its cookie sent) only once written to, and idle
  ones are deleted every ``cleanup_interval`` (web.py stores one per request
  and cleans once a day);
- stores keep JSON, never pickle (web.py unpickles what is on disk or in
  the database: anyone who can write there runs code in the app);
- the memcached ring and the cookie store of :mod:`webmini.stores.sessions`
  plug in too; their cookie is signed with ``secret_key``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

from webmini.config import GENERATED_SECRET, SESSION_DEFAULTS, config
from webmini.ctx import current
from webmini.errors import HTTPError
from webmini.request import cookies
from webmini.response import setcookie
from webmini.storage import Storage
from webmini.stores.sessions import SessionDataAccess, _vary_cookie
from webmini.webpy.session_stores import (
    DBStore,
    DiskStore,
    MemoryStore,
    Store,
    decode,
    encode,
    new_session_id,
    valid_session_id,
)

__all__: list[str] = []  # web.py keeps these under web.session only

# web.py shipped this secret in its source: it is public, so it signs nothing.
_WEBPY_PUBLIC_KEY = "fLjUfxqXtfNoIldA0A0J"
_MIN_SECRET = 16
_SIGNED = re.compile(r"[A-Za-z0-9_.\-]{1,4000}")

#: web.py's store names, importable from here as in web.py.
STORES = (Store, DiskStore, DBStore, MemoryStore)


def _snapshot(data: dict[str, Any]) -> str | None:
    """``data`` as JSON, to tell later whether it changed; None if it cannot be encoded."""
    try:
        return encode(dict(data))
    except (TypeError, ValueError):
        return None


class SessionExpired(HTTPError):
    """The visitor's session is gone and ``ignore_expiry`` is off: ``expired_message``."""

    def __init__(self, message: Any) -> None:
        HTTPError.__init__(self, "200 OK", {}, data=message)


class _State:
    """One request's view of one Session."""

    __slots__ = ("data", "session_id", "killed", "retired", "send_cookie", "had_cookie",
                 "unsaved")

    def __init__(self) -> None:
        self.data = Storage()
        self.session_id: str | None = None
        self.killed = False
        self.retired: list[str] = []
        self.send_cookie = True
        self.had_cookie = False
        # A new session's data as first made (JSON), until it is stored; None
        # once stored or loaded from the store.
        self.unsaved: str | None = None


class Session(SessionDataAccess):
    """Per-visitor data, loaded and saved around every request of ``app``."""

    __slots__ = ("store", "_initializer", "_last_cleanup_time", "_config", "_key", "__weakref__")

    def __init__(self, app: Any, store: Any,
                 initializer: dict[str, Any] | Callable[[], Any] | None = None) -> None:
        object.__setattr__(self, "store", store)
        object.__setattr__(self, "_initializer", initializer)
        object.__setattr__(self, "_last_cleanup_time", 0.0)
        # Read once, like web.py: later changes to session_parameters do not apply.
        # (An app may have replaced session_parameters with a partial dict.)
        object.__setattr__(self, "_config",
                           Storage(SESSION_DEFAULTS, **config.get("session_parameters", {})))
        object.__setattr__(self, "_key", self._signing_key(store))
        if getattr(store, "timeout", 0) is None:
            store.timeout = float(self._config.timeout)  # DiskStore: idle files read as gone
        if app:
            app.add_processor(self._processor)

    def _signing_key(self, store: Any) -> bytes | None:
        if isinstance(store, Store) or hasattr(store, "__contains__") and \
                hasattr(store, "__getitem__"):
            return None  # server-side data keyed by a random id: nothing to sign
        # SECURITY: a cookie that carries data (or an id a store cannot check)
        # must be signed with a real secret, never web.py's published one.
        secret = self._config.get("secret_key")
        if not secret or secret in (_WEBPY_PUBLIC_KEY, GENERATED_SECRET) \
                or len(secret) < _MIN_SECRET:
            # The generated default is per process: a cookie signed by one worker
            # would not verify in another, nor after a restart.
            raise ValueError(
                "this session store needs web.config.session_parameters.secret_key set: a "
                f"secret of at least {_MIN_SECRET} characters (secrets.token_urlsafe(32)), "
                "the same in every worker"
            )
        return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)

    # -- the current request's data ------------------------------------------

    def _state(self) -> _State:
        try:
            c = current()
        except RuntimeError:
            raise AttributeError("the session exists only while a request is served") from None
        state: _State | None = c.__dict__.get(("_session", id(self)))  # type: ignore[call-overload]
        if state is None:
            state = _State()
            c.__dict__[("_session", id(self))] = state  # type: ignore[index]
        return state

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        state = self._state()
        if name == "session_id":
            return state.session_id
        if name == "send_cookie":
            return state.send_cookie
        return getattr(state.data, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in Session.__slots__:
            object.__setattr__(self, name, value)
            return
        state = self._state()
        if name == "session_id":
            state.session_id = value
        elif name == "send_cookie":
            state.send_cookie = bool(value)
        else:
            state.data[name] = value

    # -- lifecycle --------------------------------------------------------------

    def _processor(self, handler: Callable[[], Any]) -> Any:
        self._cleanup()
        self._load()
        try:
            return handler()
        finally:
            self._save()
            # SECURITY: the answer may depend on who is logged in: a shared
            # cache must not give it to another visitor.
            _vary_cookie(current())

    def _load(self) -> None:
        state = self._state()
        state.__init__()  # type: ignore[misc]
        raw = cookies().get(self._config.cookie_name)
        state.had_cookie = bool(raw)
        loaded = self._read(raw) if raw else None
        # web.py's expiry: a well-formed id the store no longer has (a malformed
        # one is simply replaced).
        if raw and loaded is None and not self._config.ignore_expiry and (
                self._key is not None or valid_session_id(raw)):
            self.expired()
        if loaded is not None:
            state.session_id, data = loaded
            state.data.update(data)
            if state.data.get("ip") != current().ip and not self._config.ignore_change_ip:
                self.expired()
        else:
            # SECURITY: a missing, forged or unknown id is never adopted
            # (no session fixation): the visitor gets a fresh random id.
            state.session_id = new_session_id()
            self._initialize(state)
        state.data["session_id"] = state.session_id
        state.data["ip"] = current().ip
        if loaded is None:
            state.unsaved = _snapshot(state.data)

    def _initialize(self, state: _State) -> None:
        init = self._initializer
        if isinstance(init, dict):
            state.data.update(copy.deepcopy(init))
        elif callable(init):
            extra = init()
            if isinstance(extra, dict):
                state.data.update(extra)

    def _read(self, raw: str) -> tuple[str, dict[str, Any]] | None:
        store = self.store
        if self._key is None:
            if not valid_session_id(raw) or raw not in store:
                return None
            try:
                data = store[raw]
            except KeyError:
                return None
            return (raw, data) if isinstance(data, dict) else None
        token = self._unsign(raw)
        if token is None:
            return None
        loaded = store.load(token)
        if loaded is None:
            return None
        session_id, data = loaded
        try:
            return session_id, decode(data["json"])
        except (KeyError, TypeError, ValueError):
            return None

    def _save(self) -> None:
        state = self._state()
        if not state.send_cookie or state.session_id is None:
            return
        for old in state.retired:
            self._delete(old)
        state.retired = []
        if state.killed:
            if state.had_cookie:
                self._setcookie("", expires=-1)
            return
        data = dict(state.data)
        if state.unsaved is not None and state.unsaved == _snapshot(data):
            # SECURITY: a new session nobody wrote to is neither stored nor sent
            # (Django's and Flask's rule): cookieless requests cost no file, row
            # or memory; the first change stores it and sends the cookie.
            return
        state.unsaved = None
        if self._key is None:
            self.store[state.session_id] = data
            self._setcookie(state.session_id)
        else:
            # The data goes as one JSON text, so datetimes, sets... survive the
            # store's own (plain JSON) encoding.
            token = self.store.save(state.session_id, {"json": encode(data)},
                                    int(self._config.timeout))
            self._setcookie(self._sign(token))

    def _delete(self, session_id: str) -> None:
        if self._key is None:
            if session_id in self.store:
                del self.store[session_id]
        else:
            self.store.delete(session_id)

    def _setcookie(self, value: str, expires: Any = "") -> None:
        cfg = self._config
        secure = cfg.get("secure")
        if secure is None:
            secure = current().protocol == "https"
        setcookie(cfg.cookie_name, value, expires=expires, domain=cfg.get("cookie_domain"),
                  secure=bool(secure), httponly=bool(cfg.get("httponly", True)),
                  path=cfg.get("cookie_path"), samesite=cfg.get("samesite"))

    def _cleanup(self) -> None:
        # Sessions idle past ``timeout`` are deleted at most every
        # ``cleanup_interval`` seconds (web.py: once per ``timeout``).
        now = time.time()
        timeout = float(self._config.timeout)
        interval = min(timeout, float(self._config.get("cleanup_interval", timeout)))
        if now - self._last_cleanup_time >= interval:
            object.__setattr__(self, "_last_cleanup_time", now)
            cleanup = getattr(self.store, "cleanup", None)
            if cleanup is not None:
                cleanup(timeout)

    def expired(self) -> None:
        """End the session and answer ``expired_message`` (web.py's SessionExpired)."""
        state = self._state()
        state.killed = True
        self._save()
        raise SessionExpired(self._config.expired_message)

    def kill(self) -> None:
        """End the session: its stored data is deleted and the cookie expired."""
        state = self._state()
        if state.session_id is not None:
            self._delete(state.session_id)
        state.killed = True
        state.data["_killed"] = True

    def regenerate(self) -> str:
        """Give the session a new id, keeping its data (call it on login); return the id."""
        # SECURITY: a new id at each privilege change defeats session fixation.
        state = self._state()
        if state.session_id is not None:
            state.retired.append(state.session_id)
        state.session_id = new_session_id()
        state.data["session_id"] = state.session_id
        return state.session_id

    # -- signed cookies (for stores.sessions.CacheStore / CookieStore) -----------

    def _mac(self, token: str) -> str:
        assert self._key is not None
        msg = f"webmini.webpy.session|{self._config.cookie_name}|{token}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def _sign(self, token: str) -> str:
        signed = f"{token}.{int(time.time())}"
        return f"{signed}.{self._mac(signed)}"

    def _unsign(self, value: str) -> str | None:
        if not _SIGNED.fullmatch(value):
            return None
        rest, _, mac = value.rpartition(".")
        token, _, issued = rest.rpartition(".")
        if not token or not issued.isdigit():
            return None
        # SECURITY: constant-time comparison; the issue time is signed too.
        if not hmac.compare_digest(self._mac(rest).encode(), mac.encode()):
            return None
        if time.time() - int(issued) > float(self._config.timeout):
            return None
        return token
