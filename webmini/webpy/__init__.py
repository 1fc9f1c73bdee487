"""web.py's modules, so ported apps find ``web.db``, ``web.template`` and friends.

Each module here carries web.py's API under web.py's name and is reachable as
an attribute of ``webmini`` (``web.template.render``) and as a submodule
(``import webmini.template``): ``db`` (``web.database``), ``session``,
``template``, ``form``, ``utils``, ``http``, ``net``, and ``contrib`` (web.py's
``contrib.template``, ``import webmini.contrib.template``). They build on the core and on the
stores wing (never the reverse); the core never imports them at import time.

Their parts: ``web.db`` is a face over ``_dbapi`` (the query API and
transactions), ``_dbopen`` (``web.database()``, one backend per ``dbn`` from
the stores wing), ``_dbresults`` (result sets) and ``_sql`` (SQL building
blocks); ``session`` is the stores wing's session engine set up from
``session_parameters``, with web.py's stores in ``session_stores``;
``template`` runs on ``templetor`` (parser, compiler, runtime, sandbox);
``applications`` holds web.py's other application kinds and ``mail`` is
``web.sendmail``.
"""
