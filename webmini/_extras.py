"""Optional third-party packages: one way to require one, one way to ask if gevent patched.

Every wing imports its package inside ``with require(extra, feature):``; a
missing package then fails with the line that fixes it::

    with require("mysql", "webmini.stores.mysql"):
        import pymysql
    # ImportError: webmini.stores.mysql needs pymysql: pip install webmini[mysql]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Import name -> the distribution pip installs it from, where they differ.
_DISTRIBUTIONS = {"memcache": "python-memcached", "uwsgi": "uWSGI", "sentry_sdk": "sentry-sdk",
                  "opentelemetry": "opentelemetry-instrumentation-wsgi"}


@contextmanager
def require(extra: str, feature: str) -> Iterator[None]:
    """Turn a missing package imported in the block into ``feature needs X: pip install ...``."""
    try:
        yield
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if not missing or missing == "webmini":
            raise  # a bug of ours or of the package, not a missing extra
        package = _DISTRIBUTIONS.get(missing, missing)
        raise ImportError(
            f"{feature} needs {package}: pip install webmini[{extra}]", name=exc.name
        ) from exc


def gevent_patched() -> bool:
    """True when gevent has patched ``socket`` and ``threading`` in this process."""
    # Never imports gevent: a process that did not import gevent.monkey is unpatched.
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None:
        return False
    return bool(monkey.is_module_patched("socket") and monkey.is_module_patched("threading"))
