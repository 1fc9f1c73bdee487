"""Local service runners: private servers on free loopback ports, for tests, benchmarks and by hand.

Not part of webmini (not in the wheel or the sdist): the test suite
(``tests/support`` wraps these in fixtures), the benchmarks and the local
cluster share them. Every runner is a :class:`process.Service`: it starts its
process, polls until it answers (never a fixed sleep), logs to a file and
stops its process (the whole group where it has one).

- ``process``: ``Service``, ``free_port``, ``wait_until``, ``stop_process``;
- ``client``: one HTTP request on a new connection (``http_get``, ``Reply``), a JSON
  call that counts a lost connection instead of raising (``call_json``, ``JsonReply``);
- ``databases``: what the database servers share (``LocalServer``, ``launch``);
- ``mariadb``, ``postgres``: a private MariaDB (optionally TLS), PostgreSQL;
- ``memcached``: memcached nodes and a three-node cluster;
- ``uwsgi``, ``gunicorn``, ``nginx``: the servers webmini runs under or behind;
- ``todo``: the todo example under uwsgi.ini, on a MariaDB and memcached;
- ``cluster``: deploy/'s shipped configs run on one machine (N uWSGI nodes, nginx).

The names most users need are importable from here.
"""

from .client import JsonReply, Reply, call_json, http_get
from .databases import DATABASE, USER, LocalServer, launch
from .mariadb import MariaDBError, MariaDBServer, TLSFiles, make_tls_files, start_mariadb
from .memcached import (
    MEMCACHED,
    MemcachedCluster,
    MemcachedError,
    MemcachedNode,
    raw_command,
    server_stats,
)
from .process import (
    Service,
    ServiceError,
    child_pids,
    free_port,
    process_state,
    stop_process,
    wait_until,
)

__all__ = [
    "DATABASE", "MEMCACHED", "USER", "JsonReply", "LocalServer", "MariaDBError",
    "MariaDBServer", "MemcachedCluster", "MemcachedError", "MemcachedNode", "Reply", "Service",
    "ServiceError", "TLSFiles", "call_json", "child_pids", "free_port", "http_get", "launch",
    "make_tls_files", "process_state", "raw_command", "server_stats", "start_mariadb",
    "stop_process", "wait_until",
]
