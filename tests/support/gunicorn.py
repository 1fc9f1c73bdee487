"""Fixture: gunicorn with webmini's config on a free loopback port.

The runner, ``GunicornServer``, lives in ``localservices/gunicorn.py``
(tests and benchmarks import it from there or from here); the
``start_gunicorn`` factory fixture stops every server it started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from localservices.gunicorn import GunicornServer
from support import started_servers

__all__ = ["GunicornServer", "start_gunicorn"]


@pytest.fixture
def start_gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., GunicornServer]]:
    """Factory: ``start_gunicorn(**GunicornServer options)`` -> a ready server, stopped after."""
    yield from started_servers(
        lambda **kw: GunicornServer(tmp_path_factory.mktemp("gunicorn"), **kw))
