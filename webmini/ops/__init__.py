"""Operations wing: what an operator scrapes and probes.

- ``metrics``: Prometheus counters and histograms per worker.
- ``health``: ``/healthz``-style checks of the app's upstreams.
"""
