"""Serving wing: everything between a socket and ``Application.__call__``.

- ``devserver``: the gevent dev server behind ``webmini run`` and ``app.run()``;
  it patches the standard library when it starts serving, never on import.
- ``pywsgi_handler``: its connection handling on ``gevent.pywsgi`` (TCP_NODELAY,
  bounded pool, keep-alive and header deadlines, header-size limit, access log).
- ``reloader``: ``--reload`` and ``--workers`` (a supervisor holding the socket).
- ``green``: the gevent guard: early patching, the blocking-driver audit and
  the event-loop monitor.
- ``uwsgi``: the uWSGI adapter: worker id, post-fork and at-exit hooks, chained.
- ``aio``: ``async def`` handlers: one asyncio loop per worker process, run on
  the gevent hub; each coroutine awaited by its request's greenlet.
- ``timeouts``: a per-request ``gevent.Timeout`` (uWSGI's harakiri is per worker).
- ``debugpage``: the escaped HTML traceback page shown only in debug.

The core never imports this wing at import time; it reaches in lazily when a
server starts (``app.run()``, ``wsgifunc()`` under uWSGI), a handler has a
``timeout`` or is a coroutine function, or a debug page is wanted.
"""
