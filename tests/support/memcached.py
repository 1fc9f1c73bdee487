"""Fixtures: private memcached processes on free loopback ports.

``memcached_cluster`` (session scope) runs three memcached servers started
from Debian's binary; ``memcached`` (per test) makes sure all three are up
and empty, and yields the same cluster object. A test may kill, freeze or
restart a node, or start extra ones; extra nodes are stopped afterwards.
The runner itself is the top-level ``localservices`` package.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from localservices import (
    MEMCACHED,
    MemcachedCluster,
    MemcachedError,
    MemcachedNode,
    raw_command,
    server_stats,
)

__all__ = [
    "MemcachedCluster", "MemcachedNode", "memcached", "memcached_cluster", "raw_command",
    "server_stats",
]


@pytest.fixture(scope="session")
def memcached_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedCluster]:
    """Three private memcached servers for the whole session."""
    if not os.access(MEMCACHED, os.X_OK):
        pytest.fail(f"memcached binary not found ({MEMCACHED}): apt-get install memcached")
    cluster = MemcachedCluster(tmp_path_factory.mktemp("memcached"))
    try:
        try:
            cluster.start()
        except MemcachedError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def memcached(memcached_cluster: MemcachedCluster) -> Iterator[MemcachedCluster]:
    """The cluster, all three nodes up and empty; extra nodes stopped after the test."""
    memcached_cluster.reset()
    yield memcached_cluster
    memcached_cluster.reset()
