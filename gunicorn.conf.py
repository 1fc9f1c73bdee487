"""gunicorn reads ./gunicorn.conf.py: webmini's settings (webmini/serving/gunicorn_conf.py).

    gunicorn myapp:application          (from this directory)
    gunicorn -c python:webmini.serving.gunicorn_conf myapp:application   (from anywhere)
"""

from webmini.serving.gunicorn_conf import *  # noqa: F403
