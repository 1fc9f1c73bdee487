"""Serving wing: everything between a socket and ``Application.__call__``.

- ``devserver``: the gevent dev server behind ``webmini run`` and ``app.run()``;
  it patches the standard library when it starts serving, never on import.
- ``pywsgi_handler``: its connection handling on ``gevent.pywsgi`` (TCP_NODELAY,
  bounded pool, keep-alive and header deadlines, header-size limit, access log).
- ``reloader``: ``--reload`` and ``--workers`` (a supervisor holding the socket).
- ``green``: the gevent guard: early patching, the blocking-driver audit and
  the event-loop monitor.
- ``strict``: strict HTTP/1.1 request-head checks for the dev server (RFC 9112, on h11).
- ``uwsgi``: the uWSGI adapter: worker id, post-fork and at-exit hooks, chained.
- ``aio``: ``async def`` handlers: one asyncio loop per worker process, run on
  the gevent hub; each coroutine awaited by its request's greenlet.
- ``uwsgi_setup``: what a uWSGI worker sets up when it loads the app (logging,
  the start-up audit).
- ``uwsgi_guard``: refuses to serve when uWSGI's lenient HTTP parsers are
  reachable beyond this host.
- ``gunicorn``: gunicorn's gevent worker, made to serve webmini like uWSGI does.
- ``gunicorn_conf``: webmini's gunicorn configuration (``-c python:webmini.serving.gunicorn_conf``).
- ``ws_backends``: the WebSocket opening handshake on uWSGI and on the dev
  server, and taking the connection over from the server.
- ``timeouts``: a per-request ``gevent.Timeout`` (uWSGI's harakiri is per worker).
- ``debugpage``: the escaped HTML traceback page shown only in debug.

The core never imports this wing at import time; it reaches in lazily when a
server starts (``app.run()``, ``wsgifunc()`` under uWSGI), a handler has a
``timeout`` or is a coroutine function, or a debug page is wanted.
"""
