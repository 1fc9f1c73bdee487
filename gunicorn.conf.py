"""gunicorn reads ./gunicorn.conf.py: webmini's settings (webmini/serving/gunicorn_conf.py).

    gunicorn myapp:application          (from this directory)
    gunicorn -c python:webmini.serving.gunicorn_conf myapp:application   (from anywhere)

In production set WEBMINI_ALLOWED_HOSTS (the host names served; any other Host
is a 400) and, if the proxy is not on this host, WEBMINI_TRUSTED_PROXIES: both
gunicorn (forwarded_allow_ips) and webmini read the latter.
"""

from webmini.serving.gunicorn_conf import *  # noqa: F403
