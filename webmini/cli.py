"""The ``webmini`` command: ``webmini run``, ``check``, ``routes`` and ``config``.

Also ``python -m webmini``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["CONFIGS", "config_text", "load_app", "main"]


def load_app(target: str, command: str = "run") -> Any:
    """Import ``module:attr`` (attr defaults to ``app``) and return the WSGI callable."""
    obj = load_object(target, command)
    wsgifunc = getattr(obj, "wsgifunc", None)
    if callable(wsgifunc):
        try:
            return wsgifunc()
        except ValueError as exc:  # the URL table names what does not exist
            _fail(f"{exc} (webmini check {target} lists every problem)")
    if not callable(obj):
        _fail(f"webmini: {target!r} is not a WSGI callable")
    return obj


def _fail(line: str) -> NoReturn:
    """Print one line on stderr and exit with status 2 (a usage error, as argparse's)."""
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(2)


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
        _fail(f"webmini: {target!r} is a file path; name the module and the app: "
              f"webmini {command} {suggestion}")
    module_name, _, attr = target.partition(":")
    if not module_name:
        _fail(f"webmini: expected module:app, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name
                                    or module_name.startswith(exc.name + ".")):
            raise  # the module exists; something it imports does not: the traceback says what
        _fail(f"webmini: no module named {exc.name!r} (from {target!r}): run from the "
              f"directory that holds it, or put that directory on PYTHONPATH")
    except ValueError as exc:
        if not str(exc).startswith("webmini: "):
            raise
        _fail(f"{exc} (in {module_name!r})")  # e.g. a URL table webmini refuses
    obj: Any = module
    for part in (attr or "app").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            _fail(f"webmini: {module_name!r} has no attribute {attr or 'app'!r}")
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

    routes = sub.add_parser("routes", help="list the URL table: pattern, handler, methods")
    routes.add_argument("target", help="module:app")

    conf = sub.add_parser(
        "config", help="print a production config shipped with webmini (uwsgi.ini, ...)"
    )
    conf.add_argument("name", choices=sorted(CONFIGS),
                      help="uwsgi: uwsgi.ini; gunicorn: gunicorn.conf.py; nginx: nginx site file")
    return parser


#: ``webmini config NAME`` -> the file it prints, under the ``webmini`` package.
CONFIGS = {
    "uwsgi": "serving/configs/uwsgi.ini",
    "gunicorn": "serving/gunicorn_conf.py",
    "nginx": "serving/configs/nginx.conf",
}


def config_text(name: str) -> str:
    """Return the text of the shipped production config ``name`` (a key of :data:`CONFIGS`)."""
    from importlib.resources import files

    return files("webmini").joinpath(CONFIGS[name]).read_text(encoding="utf-8")


def route_rows(app: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """(pattern, handler, methods) of every route of ``app``, sub-applications expanded."""
    from webmini.app import _allowed_methods
    from webmini.routing import HANDLER, REDIRECT, SUBAPP

    rows = []
    for route in app._router.routes:
        shown = prefix + route.pattern
        if route.kind == SUBAPP:
            rows.extend(route_rows(route.target, shown))
            continue
        if route.kind == REDIRECT:
            rows.append((shown, route.target, "*"))
            continue
        target = route.target
        if route.kind == HANDLER and isinstance(target, str):
            try:
                target = route.resolve(app.fvars)
            except LookupError:
                rows.append((shown, f"{target} (not defined)", "-"))
                continue
        if isinstance(target, type):
            name = f"{target.__module__}.{target.__qualname__}"
            rows.append((shown, name, ",".join(_allowed_methods(target))))
        else:
            name = getattr(target, "__qualname__", None) or repr(target)
            rows.append((shown, f"{getattr(target, '__module__', '?')}.{name}", "*"))
    return rows


def _routes(args: argparse.Namespace) -> int:
    from webmini.serving import green

    green.patch()
    obj = load_object(args.target, "routes")
    if getattr(obj, "_router", None) is None:
        _fail(f"webmini: {args.target!r} is not a webmini application (no URL table)")
    rows = [("Pattern", "Handler", "Methods"), *route_rows(obj)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for n, (pattern, handler, methods) in enumerate(rows):
        print(f"{pattern:<{widths[0]}}  {handler:<{widths[1]}}  {methods}".rstrip())
        if n == 0:
            print(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * 7}")
    return 0


def _config(args: argparse.Namespace) -> int:
    sys.stdout.write(config_text(args.name))
    return 0


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
    if args.command == "config":
        return _config(args)
    if args.command == "routes":
        return _routes(args)
    return _check(args)


if __name__ == "__main__":
    sys.exit(main())
