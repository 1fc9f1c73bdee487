"""The ``webmini`` command: ``webmini run module:app`` and ``webmini check module:app``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["load_app", "main"]


def load_app(target: str) -> Any:
    """Import ``module:attr`` (attr defaults to ``app``) and return the WSGI callable."""
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise SystemExit(f"webmini: expected module:app, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in (attr or "app").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(
                f"webmini: {module_name!r} has no attribute {attr or 'app'!r}"
            ) from None
    wsgifunc = getattr(obj, "wsgifunc", None)
    if callable(wsgifunc):
        return wsgifunc()
    if not callable(obj):
        raise SystemExit(f"webmini: {target!r} is not a WSGI callable")
    return obj


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webmini", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve module:app with the gevent dev server")
    run.add_argument("target", help="module:app (a webmini application or any WSGI callable)")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks one)")
    run.add_argument("--reload", action="store_true", help="restart when a .py file changes")
    run.add_argument("--reload-dir", action="append", dest="reload_dirs", metavar="DIR",
                     help="directory to watch (repeatable; default: the current one)")
    run.add_argument("--debug", action="store_true",
                     help="HTML debug pages and the event-loop monitor (never in production)")
    run.add_argument("--workers", type=int, default=1,
                     help="processes sharing the listening socket (default 1)")
    run.add_argument("--pool-size", type=int, default=1000,
                     help="most connections served at once per process (default 1000)")
    run.add_argument("--keepalive-timeout", type=float, default=5.0,
                     help="seconds an idle keep-alive connection is kept (default 5)")
    run.add_argument("--header-timeout", type=float, default=10.0,
                     help="seconds a client has to send request line and headers (default 10)")
    run.add_argument("--read-timeout", type=float, default=60.0,
                     help="seconds one socket read or write of a body may wait (default 60)")
    run.add_argument("--graceful-timeout", type=float, default=10.0,
                     help="seconds in-flight requests get to finish after SIGTERM (default 10)")

    check = sub.add_parser("check", help="list modules of module:app that block the event loop")
    check.add_argument("target", help="module:app")
    return parser


def _run(args: argparse.Namespace) -> int:
    from webmini.config import config
    from webmini.serving.reloader import LISTEN_FD_ENV, announce, listen, supervise

    if args.debug:
        config.debug = True
    if args.reload:
        config.reload = True
    if LISTEN_FD_ENV not in os.environ and (args.reload or args.workers > 1):
        # The supervisor never imports the application: its children do.
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        sock = listen(args.host, args.port)
        announce(sock)
        supervise(sock, workers=args.workers, reload=args.reload, reload_dirs=args.reload_dirs,
                  stop_grace=args.graceful_timeout + 5.0)
        return 0
    from webmini.serving import green

    green.patch()  # before the server (it imports ssl) and the application are imported
    from webmini.serving.devserver import serve

    app = load_app(args.target)
    serve(
        app, args.host, args.port, debug=args.debug or None, pool_size=args.pool_size,
        keepalive_timeout=args.keepalive_timeout, header_timeout=args.header_timeout,
        read_timeout=args.read_timeout, graceful_timeout=args.graceful_timeout,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from webmini.serving import green

    green.patch()
    load_app(args.target)
    found = green.audit()
    for item in found:
        print(f"webmini check: {item}")
    if found:
        print(f"webmini check: {len(found)} blocking module(s) loaded by {args.target}")
        return 1
    print(f"webmini check: no blocking module loaded by {args.target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``webmini`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    return _check(args)


if __name__ == "__main__":
    sys.exit(main())
