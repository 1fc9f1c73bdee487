"""Sentry for webmini: every unhandled exception as an event with its request and route.

Errors need one line next to ``sentry_sdk.init``::

    import sentry_sdk
    from webmini.contrib.sentry import WebminiIntegration

    sentry_sdk.init(dsn="...", integrations=[WebminiIntegration()])

Each exception a handler, a streamed body or a WebSocket event lets escape
(what webmini answers with a 500 or a close code 1011) becomes an event,
like Flask's: the exception unhandled (``mechanism: webmini``), the request
(URL, method, query string, headers with ``Cookie``/``Authorization``
and other credentials filtered; the body as the handler parsed it, JSON or form, within the SDK's
``max_request_body_size``), the transaction named by the route (``/users/(\\d+)``), and the
tags ``route``, ``request_id`` and ``webmini.stage`` (request, stream or
websocket). The client's address (``web.ctx.ip``, which honours
``trusted_proxies``) is sent only when the SDK may send personal data.

Tracing as well: ``application = instrument(app)`` wraps the app in the
SDK's ``SentryWsgiMiddleware`` and names each request's transaction by its
route instead of "generic WSGI request".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webmini._extras import require
from webmini.ctx import UNSET, RequestContext, current_or_none
from webmini.reporting import ExcInfo, add_error_reporter

with require("sentry", "webmini.contrib.sentry"):
    import sentry_sdk
    from sentry_sdk.integrations import Integration
    from sentry_sdk.utils import event_from_exception

__all__ = ["WebminiIntegration", "instrument", "name_transaction", "report"]

# SECURITY: credentials never leave the process; addresses only as personal data may.
_CREDENTIALS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-csrf-token",
})
_ADDRESSES = frozenset({"x-forwarded-for", "x-real-ip", "forwarded"})
_FILTERED = "[Filtered]"
# Set on an application by instrument(): its errors are sent without WebminiIntegration too.
_INSTRUMENTED = "_sentry_instrumented"


class WebminiIntegration(Integration):  # type: ignore[misc]
    """``sentry_sdk.init(integrations=[WebminiIntegration()])``: webmini's errors become events."""

    identifier = "webmini"

    @staticmethod
    def setup_once() -> None:
        """Register :func:`report` with ``web.config.error_reporters`` (once per process)."""
        add_error_reporter(report)


def _send_pii() -> bool:
    """True when the SDK may send personal data (2.x ``send_default_pii``, 3.x data_collection)."""
    options = sentry_sdk.get_client().options
    collection = options.get("data_collection")
    if isinstance(collection, dict):
        return bool(collection.get("user_info"))
    return bool(options.get("send_default_pii"))


def _request_info(c: RequestContext, pii: bool) -> dict[str, Any]:
    env = c.env
    headers = {}
    for key, value in env.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
            lower = name.lower()
            hidden = lower in _CREDENTIALS or (not pii and lower in _ADDRESSES)
            headers[name] = _FILTERED if hidden else value
    if env.get("CONTENT_TYPE"):
        headers["Content-Type"] = env["CONTENT_TYPE"]
    info: dict[str, Any] = {
        "url": c.home + c.path,
        "method": c.method,
        "headers": headers,
        "env": {k: env[k] for k in ("SERVER_NAME", "SERVER_PORT") if k in env},
    }
    if env.get("QUERY_STRING"):
        info["query_string"] = env["QUERY_STRING"]
    if pii:
        info["env"]["REMOTE_ADDR"] = env.get("REMOTE_ADDR", "")
    data = _body(c)
    if data is not None:
        info["data"] = data
    return info


def _body(c: RequestContext) -> Any:
    """The request body as the app parsed it (JSON or form), within the SDK's size setting.

    Only what the handler read already: the reporter never reads a body.
    """
    options = sentry_sdk.get_client().options
    collection = options.get("data_collection")
    if isinstance(collection, dict) and "incoming_request" not in (
            collection.get("http_bodies") or ()):
        return None
    size = {"never": -1, "small": 10**3, "medium": 10**4}.get(
        options.get("max_request_body_size", "medium"), 1 << 62)
    try:
        length = int(c.env.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if size < 0 or length > size:
        return None
    if c.parsed_json is not UNSET:
        return c.parsed_json
    if c.parsed_form is not None:
        return dict(c.parsed_form[0])
    return None


def report(exc_info: ExcInfo, c: RequestContext, stage: str) -> None:
    """Send the exception as a Sentry event with the request, route and request id."""
    client = sentry_sdk.get_client()
    if not client.is_active() or (client.get_integration(WebminiIntegration) is None
                                  and not getattr(c.app, _INSTRUMENTED, False)):
        return  # no client, or one that did not ask for webmini's errors
    event, hint = event_from_exception(exc_info, mechanism={"type": "webmini", "handled": False})
    pii = _send_pii()
    event["request"] = _request_info(c, pii)
    if pii:
        event["user"] = {"ip_address": c.ip}
    route = c.route
    rid = c.env.get("webmini.request_id")
    with sentry_sdk.new_scope() as scope:
        scope.set_transaction_name(route or c.path, source="route" if route else "url")
        scope.set_tag("route", route or "(unmatched)")
        scope.set_tag("webmini.stage", stage)
        if rid:
            scope.set_tag("request_id", rid)
        sentry_sdk.capture_event(event, hint=hint)


def name_transaction(handler: Callable[[], Any]) -> Any:
    """Processor: name the request's Sentry transaction (and its span) by its route."""
    try:
        return handler()
    finally:
        c = current_or_none()
        route = c.route if c is not None else None
        if route is not None:
            sentry_sdk.get_current_scope().set_transaction_name(route, source="route")
            span = sentry_sdk.get_current_span()
            set_attribute = getattr(span, "set_attribute", None)  # 3.x spans; 2.x: set_data
            if set_attribute is not None:
                set_attribute("http.route", route)


def instrument(app: Any, **options: Any) -> Callable[..., Any]:
    """Return ``app.wsgifunc()`` in ``SentryWsgiMiddleware``, transactions named by route.

    ``options`` go to the middleware; :func:`report` is registered too, so
    this works with or without :class:`WebminiIntegration` in ``init``.
    """
    from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

    setattr(app, _INSTRUMENTED, True)
    add_error_reporter(report)
    if name_transaction not in app.processors:
        app.add_processor(name_transaction)
    return SentryWsgiMiddleware(app.wsgifunc(), **options)  # type: ignore[no-any-return]
