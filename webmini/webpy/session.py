"""web.py's ``web.session``: ``Session(app, store, initializer=)`` and its stores.

A thin layer over the session engine of :mod:`webmini.stores.sessions`, set
up from ``web.config.session_parameters``. Ported code keeps working:
``session.user = ...``, ``session.get()``, ``session.kill()``,
``session.expired()``, ``DiskStore``, ``DBStore`` over ``web.database``, a
store of one's own with web.py's interface. What changes is what an attacker
can do:

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

from collections.abc import Callable
from typing import Any

from webmini.config import GENERATED_SECRET, SESSION_DEFAULTS, config
from webmini.ctx import RequestContext, current
from webmini.errors import HTTPError
from webmini.request import cookies
from webmini.storage import Storage
from webmini.stores import sessions
from webmini.stores.sessions import SessionState, valid_session_id
from webmini.webpy.session_stores import (
    DBStore,
    DiskStore,
    MemoryStore,
    Store,
    as_session_store,
)

__all__: list[str] = []  # web.py keeps these under web.session only

# web.py shipped this secret in its source: it is public, so it signs nothing.
_WEBPY_PUBLIC_KEY = "fLjUfxqXtfNoIldA0A0J"

#: web.py's store names, importable from here as in web.py.
STORES = (Store, DiskStore, DBStore, MemoryStore)


class SessionExpired(HTTPError):
    """The visitor's session is gone and ``ignore_expiry`` is off: ``expired_message``."""

    def __init__(self, message: Any) -> None:
        HTTPError.__init__(self, "200 OK", {}, data=message)


def _secret(cfg: Storage) -> str | bytes:
    """``secret_key``, refused unless it is a real secret shared by every worker."""
    secret = cfg.get("secret_key")
    # SECURITY: a cookie that carries data (or an id a store cannot check)
    # must be signed with a real secret, never web.py's published one; the
    # generated default is per process: a cookie signed by one worker would
    # not verify in another, nor after a restart.
    if not secret or secret in (_WEBPY_PUBLIC_KEY, GENERATED_SECRET) \
            or len(secret) < sessions.MIN_SECRET_LENGTH:
        raise ValueError(
            "this session store needs web.config.session_parameters.secret_key set: a "
            f"secret of at least {sessions.MIN_SECRET_LENGTH} characters "
            "(secrets.token_urlsafe(32)), the same in every worker"
        )
    return secret  # type: ignore[no-any-return]


class Session(sessions.Session):
    """Per-visitor data, loaded and saved around every request of ``app``."""

    _save_on_error = True  # web.py saves in a ``finally``
    _in_ctx = False  # web.ctx.session is the app's own business in web.py

    def __init__(self, app: Any, store: Any,
                 initializer: dict[str, Any] | Callable[[], Any] | None = None) -> None:
        # Read once, like web.py: later changes to session_parameters do not apply.
        # (An app may have replaced session_parameters with a partial dict.)
        cfg = Storage(SESSION_DEFAULTS, **config.get("session_parameters", {}))
        engine_store = as_session_store(store)
        signed = getattr(engine_store, "signed", True)
        if getattr(store, "timeout", 0) is None:
            store.timeout = float(cfg.timeout)  # DiskStore: idle files read as gone
        timeout = float(cfg.timeout)
        super().__init__(
            app, engine_store, initializer,
            secret=_secret(cfg) if signed else None,
            cookie_name=cfg.cookie_name, timeout=timeout,
            cookie_path=cfg.get("cookie_path"), cookie_domain=cfg.get("cookie_domain"),
            secure=cfg.get("secure"), samesite=cfg.get("samesite"),
            httponly=bool(cfg.get("httponly", True)),
            refresh=0,  # a session read is written again, as in web.py (its idle clock)
            # Sessions idle past ``timeout`` are deleted at most every
            # ``cleanup_interval`` seconds (web.py: once per ``timeout``).
            cleanup_interval=min(timeout, float(cfg.get("cleanup_interval", timeout))),
        )
        object.__setattr__(self, "store", store)
        object.__setattr__(self, "_config", cfg)

    # -- web.py's attribute access ----------------------------------------------

    def _no_state(self, c: RequestContext | None) -> SessionState:
        if c is None:
            raise AttributeError("the session exists only while a request is served")
        return self._blank(c)  # a request its processor did not load: empty, never saved

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        state = self._state()
        if name == "send_cookie":
            return state.send_cookie
        return getattr(state.data, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "store":
            object.__setattr__(self, name, value)
            return
        state = self._state()
        if name == "session_id":
            state.session_id = value
        elif name == "send_cookie":
            state.send_cookie = bool(value)
        else:
            state.data[name] = value

    @property  # type: ignore[override]
    def data(self) -> Any:
        """web.py has no such attribute: ``session.data`` is the session value "data"."""
        return self.__getattr__("data")

    # -- web.py's behaviour ---------------------------------------------------------

    def _loaded(self, state: SessionState) -> None:
        cfg, ip = self._config, current().ip
        if state.is_new:
            raw = cookies().get(cfg.cookie_name)
            # web.py's expiry: a well-formed id the store no longer has (a
            # malformed one is simply replaced).
            if raw and not cfg.ignore_expiry and (self._signer is not None
                                                  or valid_session_id(raw)):
                self.expired()
        elif state.data.get("ip") != ip and not cfg.ignore_change_ip:
            self.expired()
        state.data["session_id"] = state.session_id
        state.data["ip"] = ip

    def expired(self) -> None:
        """End the session and answer ``expired_message`` (web.py's SessionExpired)."""
        state = self._state()
        state.killed = True
        self._save(state)
        raise SessionExpired(self._config.expired_message)

    def kill(self) -> None:
        """End the session: its stored data is deleted and the cookie expired."""
        state = self._state()
        self._store.delete(state.session_id)
        state.killed = True
        state.data["_killed"] = True

    def regenerate(self) -> str:
        """Give the session a new id, keeping its data (call it on login); return the id."""
        session_id = super().regenerate()
        self._state().data["session_id"] = session_id
        return session_id
