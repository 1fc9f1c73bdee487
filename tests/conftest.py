"""Shared pytest configuration.

The suite runs the way webmini runs in production: gevent patches the
standard library before anything else is imported. Real services (MariaDB,
memcached, uWSGI, nginx) are provided by the fixture plugins listed below.
"""

from gevent import monkey

monkey.patch_all()

pytest_plugins = [
    "fixtures_mariadb",
    "fixtures_memcached",
    "fixtures_servers",
    "fixtures_gunicorn",
]
