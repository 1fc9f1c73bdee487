"""Shared pytest configuration.

The suite runs the way webmini runs in production: gevent patches the
standard library before anything else is imported. Real services (MariaDB,
memcached, uWSGI, nginx) are provided by the fixture plugins listed below
(``tests/support/``); a test using one is marked with it (``-m "not uwsgi"``).
"""

from gevent import monkey

monkey.patch_all()

pytest_plugins = [
    "support.mariadb",
    "support.memcached",
    "support.postgres",
    "support.servers",
    "support.gunicorn",
    "support.markers",
    "support.overlap",
]
