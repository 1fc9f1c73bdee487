"""Stores wing: the upstreams an API waits on, made cooperative under gevent.

- ``mysql``: a bounded pymysql pool that never hands a broken connection on.
- ``pool``: the driver-independent pool under it and under the SQLite and
  PostgreSQL backends, with one TLS context per pool and the URL options.
- ``backend``: one statement at a time on a pooled connection, for any driver
  (what ``web.database`` runs on).
- ``sqlite``: SQLite connections, each running in its own native thread.
- ``postgres``: PostgreSQL over pg8000 (pure Python, cooperative).
- ``watchdog``: a time limit for statements, one greenlet per pool instead of a
  timer per socket wait.
- ``cache``: memcached over python-memcached, pooled per node on a ketama ring.
- ``ketama``: libmemcached-compatible consistent hashing.
- ``sessions``: the session engine (ids, signer, codec, store interface), with
  memcached and cookie stores; ``web.session`` is a layer over it.

A module with a third-party driver (``mysql``, ``pool``, ``cache``, ``postgres``)
imports it through ``webmini._extras.require`` when the module itself is
imported (the core never does), so a missing extra fails with the ``pip
install webmini[...]`` line that fixes it. ``ketama``, ``sessions``,
``backend`` and ``sqlite`` need only the standard library; ``watchdog``
imports gevent directly, reached only through ``mysql``, after its check.
web.py's ``web.db`` and ``web.session`` APIs are a face over these, in
``webmini.webpy``; nothing here imports it.
"""
