"""What the tests need around webmini: private services, free ports, fixtures and markers.

- ``mariadb``, ``memcached``, ``servers`` (uWSGI, nginx, ``webmini run``):
  pytest fixture plugins, loaded by ``tests/conftest.py``; the MariaDB and
  memcached runners themselves live in ``deploy/localservices.py``, shared
  with the benchmarks.
- :func:`free_port`: the one way to get a free loopback port.
- ``markers``: a test using a service's fixture gets that service's marker
  (``mariadb``, ``memcached``, ``uwsgi``, ``nginx``, ``browser``), so
  ``pytest -m "not uwsgi"`` leaves those tests out.
"""

from localservices import free_port

__all__ = ["free_port"]
