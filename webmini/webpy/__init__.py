"""web.py's modules, so ported apps find ``web.db``, ``web.template`` and friends.

Each module here carries web.py's API under web.py's name and is reachable as
an attribute of ``webmini`` (``web.template.render``) and as a submodule
(``import webmini.template``): ``db`` (``web.database``), ``session``,
``template``, ``form``, ``utils``, ``http``, ``net``. They build on the core and
on the stores wing; the core never imports them at import time.

Their parts: ``web.db`` is a face over ``_dbapi`` (the query API and
transactions), ``_dbconn`` (one backend per ``dbn``), ``_dbopen``
(``web.database()``), ``_dbresults`` (result sets) and ``_sql`` (SQL building
blocks); ``session`` keeps its stores in ``session_stores``; ``template`` runs
on ``templetor`` (parser, compiler, runtime); ``applications`` holds web.py's
other application kinds and ``mail`` is ``web.sendmail``.
"""
