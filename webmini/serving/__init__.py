"""Serving wing: everything between a socket and ``Application.__call__``.

- ``devserver``: the gevent dev server behind ``webmini run`` and ``app.run()``
  (TCP_NODELAY, bounded pool, keep-alive and header deadlines, access log).
- ``reloader``: ``--reload`` and ``--workers`` (a supervisor holding the socket).
- ``green``: the gevent guard: early patching, the blocking-driver audit and
  the event-loop monitor.
- ``timeouts``: a per-request ``gevent.Timeout`` (uWSGI's harakiri is per worker).
- ``debugpage``: the escaped HTML traceback page shown only in debug.

The core never imports this wing at import time; it reaches in lazily when a
server starts or a debug page is wanted.
"""
