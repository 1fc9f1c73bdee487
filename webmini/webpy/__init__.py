"""web.py's modules, so ported apps find ``web.db``, ``web.template`` and friends.

Each module here carries web.py's API under web.py's name and is reachable as
an attribute of ``webmini`` (``web.template.render``) and as a submodule
(``import webmini.template``): ``db`` (``web.database``), ``session``,
``template``, ``form``, ``utils``, ``http``, ``net``, and ``contrib.template``
(``import webmini.contrib.template``). They build on the core and on the
stores wing (never the reverse); the core never imports them at import time.
"""
