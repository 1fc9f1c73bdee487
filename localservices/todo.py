"""The todo example (examples/todo) under uwsgi.ini, on a given MariaDB and memcached."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .uwsgi import UwsgiServer


def todo_server(workdir: Path, *, mysql_url: str, memcached: Sequence[str], secret: str,
                **options: Any) -> UwsgiServer:
    """A (not yet started) ``UwsgiServer`` for the todo app: 2 gevent workers of 100 greenlets.

    ``options`` go to :class:`UwsgiServer` (``args=[...]`` for more uWSGI options).
    """
    env = {
        "WEBMINI_TODO_MYSQL_URL": mysql_url,
        "WEBMINI_TODO_MEMCACHED": ",".join(memcached),
        "WEBMINI_TODO_SECRET": secret,
        **options.pop("env", {}),
    }
    options.setdefault("processes", 2)
    options.setdefault("gevent", 100)
    options.setdefault("listen", 128)  # within any host's net.core.somaxconn
    return UwsgiServer(workdir, module="examples.todo.app:application", env=env, name="todo",
                       **options)
