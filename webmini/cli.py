"""The ``webmini`` command: ``webmini run module:app`` and ``webmini check module:app``.

Also ``python -m webmini``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["load_app", "main"]


def load_app(target: str, command: str = "run") -> Any:
    """Import ``module:attr`` (attr defaults to ``app``) and return the WSGI callable."""
    obj = load_object(target, command)
    wsgifunc = getattr(obj, "wsgifunc", None)
    if callable(wsgifunc):
        try:
            return wsgifunc()
        except ValueError as exc:  # the URL table names what does not exist
            raise SystemExit(f"{exc}\n(webmini check {target} lists every problem)") from None
    if not callable(obj):
        raise SystemExit(f"webmini: {target!r} is not a WSGI callable")
    return obj


def _suggest(target: str) -> str | None:
    """Return ``module:app`` for a target given as a file path (``app.py``), else None."""
    module_name = target.partition(":")[0]
    if not (module_name.endswith(".py") or "/" in module_name or os.sep in module_name):
        return None
    path = module_name[:-3] if module_name.endswith(".py") else module_name
    dotted = ".".join(p for p in path.replace(os.sep, "/").split("/") if p not in ("", "."))
    return f"{dotted}:{target.partition(':')[2] or 'app'}"


def load_object(target: str, command: str = "run") -> Any:
    """Import ``module:attr`` (attr defaults to ``app``) and return that object as is."""
    suggestion = _suggest(target)
    if suggestion is not None:
        raise SystemExit(
            f"webmini: {target!r} is a file path; name the module and the app: "
            f"webmini {command} {suggestion}"
        )
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
    return obj


def _parser() -> argparse.ArgumentParser:
    from webmini import __version__

    parser = argparse.ArgumentParser(prog="webmini", description=__doc__)
    parser.add_argument("--version", action="version", version=f"webmini {__version__}")
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

    check = sub.add_parser(
        "check", help="resolve the URL table and list modules that block the event loop"
    )
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
    obj = load_object(args.target, "check")
    status = 0
    router = getattr(obj, "_router", None)
    if router is not None:
        from webmini.routing import check_table

        problems = check_table(router.routes, obj.fvars)
        for line in problems:
            print(f"webmini check: {line}")
        if any(line.startswith("error:") for line in problems):
            status = 1
        else:
            print(f"webmini check: URL table of {args.target}: {len(router.routes)} route(s) OK")
        coroutines = _coroutine_handlers(router.routes, obj.fvars)
        if coroutines:  # accepted: each runs on its worker's asyncio loop
            print(f"webmini check: {len(coroutines)} async def handler(s) "
                  f"(run on each worker's asyncio loop): {', '.join(coroutines)}")
    if not callable(getattr(obj, "wsgifunc", None)) and not callable(obj):
        print(f"webmini check: {args.target!r} is not a WSGI callable")
        return 1
    found = green.audit()
    for item in found:
        print(f"webmini check: {item}")
    if found:
        print(f"webmini check: {len(found)} blocking module(s) loaded by {args.target}")
        return 1
    print(f"webmini check: no blocking module loaded by {args.target}")
    return status


def _coroutine_handlers(routes: Any, fvars: Any) -> list[str]:
    """Name the ``async def`` handlers of a URL table (sub-applications included)."""
    from webmini.routing import HANDLER, SUBAPP

    found: list[str] = []
    for route in routes:
        if route.kind == SUBAPP:
            found += _coroutine_handlers(route.target._router.routes, route.target.fvars)
        if route.kind != HANDLER:
            continue
        try:
            target = route.resolve(fvars)
        except LookupError:
            continue  # reported by check_table
        if isinstance(target, type):
            funcs = [(f"{target.__qualname__}.{m}", getattr(target, m, None)) for m in dir(target)
                     if m.isupper()]
        else:
            funcs = [(getattr(target, "__qualname__", repr(target)), target)]
        # CO_COROUTINE | CO_ASYNC_GENERATOR, as webmini.app tests them
        found += [name for name, f in funcs
                  if getattr(getattr(f, "__code__", None), "co_flags", 0) & 0x280]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``webmini`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    return _check(args)


if __name__ == "__main__":
    sys.exit(main())
