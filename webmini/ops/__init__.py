"""Operations wing: what an operator scrapes and probes.

- ``metrics``: Prometheus counters and histograms per worker.
- ``health``: ``/healthz``-style checks of the app's upstreams.

Metrics label each series with the uWSGI worker id (``webmini.serving.uwsgi``).
"""
