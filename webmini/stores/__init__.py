"""Stores wing: the upstreams an API waits on, made cooperative under gevent.

- ``mysql``: a bounded pymysql pool that never hands a broken connection on.
- ``pool``: the driver-independent pool under it (and ``web.database``'s
  SQLite and PostgreSQL backends), with one TLS context per pool.
- ``watchdog``: a time limit for statements, one greenlet per pool instead of a
  timer per socket wait.
- ``cache``: memcached over python-memcached, pooled per node on a ketama ring.
- ``ketama``: libmemcached-compatible consistent hashing.
- ``sessions``: signed session ids with memcached or cookie storage.

A module with a third-party driver (``mysql``, ``pool``, ``cache``) imports it
through ``webmini._extras.require`` when the module itself is imported (the
core never does), so a missing extra fails with the ``pip install
webmini[...]`` line that fixes it. ``ketama`` and ``sessions`` need only the
standard library; ``watchdog`` imports gevent directly, reached only through
``mysql``, after its check.
web.py's own ``web.db`` and ``web.session`` APIs live in ``webmini.webpy``.
"""
