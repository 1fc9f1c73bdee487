"""The todo JSON API: login/logout with sessions, and CRUD on the user's todos.

Configuration comes from the environment:

- ``WEBMINI_TODO_MYSQL_URL``: ``mysql://user:password@host:port/database``
- ``WEBMINI_TODO_MEMCACHED``: ``host:port,host:port`` (todos cache and sessions)
- ``WEBMINI_TODO_SECRET``: the session signing key (16 characters or more)
- ``WEBMINI_TODO_CACHE_TTL``: seconds a todo stays cached (default 300)

``application`` is the app object (uWSGI: ``module = examples.todo.app:application``),
served exactly as its ``wsgifunc()``; it reads the environment at its first request. The database pool and
the memcached client are created on first use in each worker process, never
in the uWSGI master, and the first use creates the table if it is missing.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import webmini as web
from webmini.serving.uwsgi import at_exit
from webmini.stores.cache import Cache
from webmini.stores.mysql import Database
from webmini.stores.sessions import CacheStore, Session

from .store import TodoStore

MAX_TITLE_LENGTH = 200
# SECURITY: user names end up in session data and SQL parameters; keep them plain.
_USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MAX_ID = 2**63 - 1

urls = (
    "/login", "Login",
    "/logout", "Logout",
    "/todos", "Todos",
    r"/todos/(\d+)", "Todo",
)


@dataclass(frozen=True)
class Settings:
    """Where the app's database and memcached servers are, and its session secret."""

    mysql_url: str
    memcached: tuple[str, ...]
    secret: str
    cache_ttl: int = 300

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read ``WEBMINI_TODO_*`` variables; a missing one is a RuntimeError naming it."""
        names = ("WEBMINI_TODO_MYSQL_URL", "WEBMINI_TODO_MEMCACHED", "WEBMINI_TODO_SECRET")
        missing = [name for name in names if not environ.get(name)]
        if missing:
            raise RuntimeError(f"the todo example needs {', '.join(missing)} in the environment")
        servers = tuple(s.strip() for s in environ["WEBMINI_TODO_MEMCACHED"].split(",") if s.strip())
        return cls(
            mysql_url=environ["WEBMINI_TODO_MYSQL_URL"],
            memcached=servers,
            secret=environ["WEBMINI_TODO_SECRET"],
            cache_ttl=int(environ.get("WEBMINI_TODO_CACHE_TTL", "300")),
        )


class Resources:
    """The per-process database pool, memcached client and store, created on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()  # a gevent lock once threading is patched
        self._pid = 0
        self._cache: Cache | None = None
        self._store: TodoStore | None = None

    def _fresh(self) -> None:
        # A forked child (a uWSGI worker) never reuses what its parent created.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._cache = None
            self._store = None

    def cache(self) -> Cache:
        """The memcached ring client of this process."""
        self._fresh()
        if self._cache is None:
            self._cache = Cache(list(self.settings.memcached))
        return self._cache

    def store(self) -> TodoStore:
        """The todo store of this process (its first use creates the table if missing)."""
        self._fresh()
        store = self._store
        if store is None:
            with self._lock:
                store = self._store
                if store is None:
                    db = Database.from_url(self.settings.mysql_url)
                    store = TodoStore(db, self.cache(), ttl=self.settings.cache_ttl)
                    store.create_schema()
                    self._store = store
                    # Close the pools when the worker exits (reload, recycle,
                    # stop): MariaDB then logs no "Aborted connection".
                    at_exit(self.close)
        return store

    def close(self) -> None:
        """Close this process's idle database and memcached connections."""
        if self._pid == os.getpid():
            if self._store is not None:
                self._store.db.close()
            if self._cache is not None:
                self._cache.close()
        self._pid = 0


class _ProcessCache:
    """The session store's view of the cache: resolved per process at each call."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    def get(self, key: str) -> Any:
        """Read a session."""
        return self._resources.cache().get(key)

    def set(self, key: str, value: Any, expire: int = 0) -> bool:
        """Write a session."""
        return self._resources.cache().set(key, value, expire=expire)

    def delete(self, key: str) -> bool:
        """Delete a session."""
        return self._resources.cache().delete(key)


@dataclass
class _Bound:
    """What handlers reach through ``web.ctx.todo``."""

    session: Session
    resources: Resources
    session_processor: Callable[[Callable[[], Any]], Any]


class _Processors:
    """Receives the processor a component registers (``Session`` adds its own)."""

    def __init__(self) -> None:
        self.processors: list[Callable[[Callable[[], Any]], Any]] = []

    def add_processor(self, processor: Callable[[Callable[[], Any]], Any]) -> None:
        """Keep ``processor``."""
        self.processors.append(processor)


def _bound() -> _Bound:
    bound: _Bound = web.ctx.todo
    return bound


def _error(cls: Callable[..., web.HTTPError], message: str) -> web.HTTPError:
    return cls(message)  # sent as RFC 9457 problem details (TodoApp.error_format)



def _body() -> dict[str, Any]:
    """The request body as a JSON object (400 when it is missing, invalid or not an object)."""
    try:
        value = web.json()
    except web.BadRequest as e:
        raise _error(web.BadRequest, str(e.data)) from None
    if not isinstance(value, dict):
        raise _error(web.BadRequest, "the body must be a JSON object")
    return value


def _title(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(web.BadRequest, "title must be a non-empty string")
    title = value.strip()
    if len(title) > MAX_TITLE_LENGTH:
        raise _error(web.BadRequest, f"title must be at most {MAX_TITLE_LENGTH} characters")
    return title


def _done(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _error(web.BadRequest, "done must be true or false")
    return value


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _error(web.BadRequest, f"unknown fields: {', '.join(unknown)}")


def _user() -> str:
    """The logged-in user (401 when there is none)."""
    user = web.ctx.session.get("user")
    if not user:
        raise _error(web.Unauthorized, "login required")
    return str(user)


def _todo_id(text: str) -> int:
    todo_id = int(text)
    if todo_id > _MAX_ID:  # beyond BIGINT: no such todo
        raise _error(web.NotFound, "no such todo")
    return todo_id


class Login:
    """POST {"user": name}: start a session for ``name`` (a demo: no password)."""

    def POST(self) -> dict[str, Any]:
        """Log in; the session gets a new id."""
        body = _body()
        _only(body, {"user"})
        name = body.get("user")
        if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
            raise _error(web.BadRequest, "user must be 1-64 letters, digits, '_', '.' or '-'")
        session = _bound().session
        # SECURITY: a new session id at login defeats session fixation.
        session.regenerate()
        session.user = name
        return {"user": name}


class Logout:
    """POST: end the session."""

    def POST(self) -> bytes:
        """Log out (204)."""
        _bound().session.kill()
        web.set_status(204)
        return b""


class Todos:
    """The logged-in user's todo list."""

    def GET(self) -> dict[str, Any]:
        """List the user's todos."""
        user = _user()
        return {"todos": _bound().resources.store().list(user)}

    def POST(self) -> dict[str, Any]:
        """Create a todo from {"title": ..., "done"?: bool} (201 with Location)."""
        user = _user()
        body = _body()
        _only(body, {"title", "done"})
        title = _title(body.get("title"))
        done = _done(body["done"]) if "done" in body else False
        todo = _bound().resources.store().create(user, title, done)
        web.set_status(201)
        web.header("Location", f"{web.ctx.homepath}/todos/{todo['id']}")
        return todo


class Todo:
    """One todo of the logged-in user; someone else's todo is a 404."""

    def GET(self, todo_id: str) -> dict[str, Any]:
        """Read a todo (through the cache)."""
        user = _user()
        todo = _bound().resources.store().get(user, _todo_id(todo_id))
        if todo is None:
            raise _error(web.NotFound, "no such todo")
        return todo

    def PATCH(self, todo_id: str) -> dict[str, Any]:
        """Change the title and/or done flag; the cached copy is dropped."""
        user = _user()
        body = _body()
        _only(body, {"title", "done"})
        changes: dict[str, Any] = {}
        if "title" in body:
            changes["title"] = _title(body["title"])
        if "done" in body:
            changes["done"] = _done(body["done"])
        if not changes:
            raise _error(web.BadRequest, "give title and/or done")
        todo = _bound().resources.store().update(user, _todo_id(todo_id), changes)
        if todo is None:
            raise _error(web.NotFound, "no such todo")
        return todo

    def DELETE(self, todo_id: str) -> bytes:
        """Delete a todo (204)."""
        user = _user()
        if not _bound().resources.store().delete(user, _todo_id(todo_id)):
            raise _error(web.NotFound, "no such todo")
        web.set_status(204)
        return b""


class TodoApp(web.application):
    """The todo application; ``settings`` None: read from the environment at the first request.

    No connection is opened when it is built; the pools, the memcached client
    and the session engine are set up on first use in each worker.
    """

    # Every error as RFC 9457 problem details, the API's own and webmini's (a
    # 503 from the database or the session store, 404, 405, 413, 415, 500).
    error_format = "json"

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(urls, globals(), timeout=10.0)
        self.settings = settings
        self._bound: _Bound | None = None
        self._lock = threading.Lock()
        self.add_processor(self._bind)

    def _configure(self) -> _Bound:
        with self._lock:
            if self._bound is None:
                settings = self.settings = self.settings or Settings.from_env()
                resources = Resources(settings)
                registered = _Processors()
                session = Session(registered, CacheStore(_ProcessCache(resources),
                                                         prefix="todo-session:"),
                                  secret=settings.secret)
                self._bound = _Bound(session, resources, registered.processors[0])
            return self._bound

    def _bind(self, handler: Callable[[], Any]) -> Any:
        bound = self._bound or self._configure()
        web.ctx.todo = bound
        return bound.session_processor(handler)

    @property
    def resources(self) -> Resources:
        """The per-process pools and store."""
        return (self._bound or self._configure()).resources

    @property
    def session(self) -> Session:
        """The session engine."""
        return (self._bound or self._configure()).session


def make_app(settings: Settings | None = None) -> TodoApp:
    """Build the todo application for ``settings`` (None: the environment, read at first use)."""
    return TodoApp(settings)


# The app object itself: uWSGI and gunicorn call it exactly as its wsgifunc().
# Importing this module (tests, tools) needs no configuration; a missing
# variable is reported at the first request.
application = make_app()
