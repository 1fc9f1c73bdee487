"""webmini's gunicorn configuration: ``gunicorn -c python:webmini.serving.gunicorn_conf myapp:app``.

The counterpart of ``uwsgi.ini``, with the same environment overrides:

=======================  =============================  =========================
variable                 setting                        default
=======================  =============================  =========================
WEBMINI_MODULE           the app (unless given as arg)  examples.hello:application
WEBMINI_HTTP             ``bind``                       127.0.0.1:8080
WEBMINI_PROCESSES        ``workers``                    2 x the number of cores
WEBMINI_GEVENT           ``worker_connections``         1000
WEBMINI_LISTEN           ``backlog``                    4096 (<= net.core.somaxconn)
WEBMINI_TRUSTED_PROXIES  ``forwarded_allow_ips`` and    127.0.0.1,::1
                         webmini's ``trusted_proxies``
WEBMINI_ALLOWED_HOSTS    webmini's ``allowed_hosts``    none (any well-formed Host)
=======================  =============================  =========================

Anything else: gunicorn's own command-line options, which override this file.
``kill -HUP <master>``: graceful reload (new workers start; each old one keeps
accepting until they have loaded the app, then finishes its requests for at
most ``graceful_timeout``). ``kill -TERM``: graceful stop.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

_env = os.environ.get

# The app, unless named on the command line.
wsgi_app = _env("WEBMINI_MODULE", "examples.hello:application")
bind = [_env("WEBMINI_HTTP", "127.0.0.1:8080")]
# Two workers per core, as in uwsgi.ini (see its "processes" comment).
workers = int(_env("WEBMINI_PROCESSES") or 2 * (os.cpu_count() or 1))
# gunicorn's gevent worker, plus WebSocket hand-over and webmini's start-up
# check (webmini/serving/gunicorn.py). Each worker is patched after the
# fork, before the app is imported (preload_app stays off: one app load
# per worker, nothing of the master's hub, sockets or threads inherited).
worker_class = "webmini.serving.gunicorn.GeventWorker"
preload_app = False
# Greenlets (concurrent connections) per worker.
worker_connections = int(_env("WEBMINI_GEVENT") or 1000)
backlog = int(_env("WEBMINI_LISTEN") or 4096)
# Idle keep-alive connections are closed after 5 s (slowloris, descriptors).
keepalive = 5
# A worker whose hub did not run for 60 s (a blocked event loop) is killed and
# replaced: a backstop like uWSGI's harakiri; bound each request with
# webmini's `timeout` (gevent.Timeout) as well.
timeout = 60
# Graceful stop or reload: in-flight requests get this many seconds.
graceful_timeout = 30
# Recycle a worker after this many requests (plus jitter): a cap on slow leaks.
max_requests = 100000
max_requests_jitter = 1000
# Request line and header limits (gunicorn's maximum for the line).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# "webmini: master", "webmini: worker" in ps/top.
proc_name = "webmini"
# No control socket (gunicorn >= 24 opens one in $HOME by default): nothing to
# secure, and several instances on one machine do not share it.
control_socket_disable = True
# SECURITY: one list of trusted proxies for gunicorn and webmini alike:
# WEBMINI_TRUSTED_PROXIES (default loopback, i.e. nginx on this host, which
# must set X-Forwarded-Proto/-For/-Host itself: README's nginx snippet). It is
# put back in the environment, so the workers' webmini.config reads the same
# (a --forwarded-allow-ips on the command line would split them: use the variable).
_proxies = [str(ipaddress.ip_network(item.strip(), strict=False))
            for item in _env("WEBMINI_TRUSTED_PROXIES", "127.0.0.1,::1").split(",")
            if item.strip()]
os.environ["WEBMINI_TRUSTED_PROXIES"] = ",".join(_proxies)
forwarded_allow_ips = ",".join(_proxies)
# Only X-Forwarded-Proto says https (gunicorn also believes X-Forwarded-Ssl and
# X-Forwarded-Protocol by default, which nginx passes through untouched).
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}


def pre_fork(server: Any, worker: Any) -> None:
    """Give the worker about to start the lowest free number 1..N (the master keeps it)."""
    taken = {getattr(w, "webmini_worker_id", 0) for w in server.WORKERS.values()}
    number = 1
    while number in taken:
        number += 1
    worker.webmini_worker_id = number


def on_exit(server: Any) -> None:
    """The master is exiting: remove the workers' reload hand-over marks."""
    from webmini.serving.gunicorn import remove_ready_dir

    remove_ready_dir(os.getpid())


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker: publish its number for metrics and logs (``worker`` label)."""
    os.environ["WEBMINI_WORKER_ID"] = str(getattr(worker, "webmini_worker_id", 0))
