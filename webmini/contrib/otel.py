"""OpenTelemetry for webmini: server spans named by route, exceptions recorded on them.

One line, with the SDK set up as usual (a TracerProvider and its exporter)::

    from webmini.contrib import otel
    application = otel.instrument(app)   # the WSGI callable to serve

:func:`instrument` wraps ``app.wsgifunc()`` in opentelemetry-instrumentation-wsgi's
``OpenTelemetryMiddleware`` and adds what that middleware cannot know, as
Flask's instrumentation does: the span gets ``http.route`` (the URL-table
pattern, ``web.ctx.route``) and the name ``"GET /users/(\\d+)"`` instead of
the raw path, plus ``webmini.request_id``; and every unhandled exception
(handler, streamed body, WebSocket event) is recorded on it as an
``exception`` event (``span.record_exception``) with the status ERROR. A
WebSocket event runs after its upgrade request's span ended: its exception
gets a span of its own (``websocket <route>``) in the same trace.

Spans opened inside handlers (``tracer.start_as_current_span``) are
children of the request's span: OpenTelemetry's context lives in
contextvars, greenlet-local under gevent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webmini._extras import require
from webmini.config import config
from webmini.ctx import RequestContext, current_or_none
from webmini.reporting import ExcInfo, add_error_reporter

with require("otel", "webmini.contrib.otel"):
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

__all__ = ["annotate", "instrument", "processor", "report"]

_tracer = trace.get_tracer("webmini.contrib.otel")
# The ctx attribute keeping an upgraded (WebSocket) request's span context.
_UPGRADE_SPAN = "otel_span_context"


def annotate(span: Any, c: RequestContext) -> None:
    """Put the request's route (``http.route``, the span's name) and request id on ``span``."""
    if not span.is_recording():
        return
    route = c.route
    if route is not None:
        span.set_attribute("http.route", route)
        span.update_name(f"{c.method} {route}")
    rid = c.env.get("webmini.request_id")
    if rid:
        span.set_attribute("webmini.request_id", rid)


def processor(handler: Callable[[], Any]) -> Any:
    """Processor: annotate the current span with the route once the request is routed."""
    c = current_or_none()
    env = c.env if c is not None else {}  # the server's: a WebSocket keeps only a copy
    try:
        return handler()
    finally:
        if c is not None:
            span = trace.get_current_span()
            annotate(span, c)
            if "webmini.upgraded" in env and span.is_recording():
                setattr(c, _UPGRADE_SPAN, span.get_span_context())  # its events' parent
                # The server keeps the connection and never iterates the
                # answer, so the middleware would never end the span.
                span.end()


def _record(span: Any, exc: BaseException, stage: str) -> None:
    # A streamed body's exception, or a propagated one, goes on through the
    # middleware's trace.use_span, which records it: once is enough.
    if stage != "stream" and not (stage == "request" and config.get("propagate_exceptions")):
        span.record_exception(exc, attributes={"webmini.stage": stage})
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def report(exc_info: ExcInfo, c: RequestContext, stage: str) -> None:
    """Record the exception on the request's span (or on a span of its own for WebSockets)."""
    exc = exc_info[1]
    span = trace.get_current_span()
    if span.is_recording():
        annotate(span, c)
        _record(span, exc, stage)
        return
    if stage != "websocket":
        return  # a request outside any traced middleware: nothing to record on
    # A WebSocket event: the upgrade request's span is over; a child of it.
    upgrade = getattr(c, _UPGRADE_SPAN, None)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(upgrade)) if upgrade else None
    name = f"websocket {c.route or c.path}"
    with _tracer.start_as_current_span(name, context=parent, record_exception=False,
                                       set_status_on_exception=False) as own:
        annotate(own, c)
        own.update_name(name)
        _record(own, exc, stage)


def instrument(app: Any, **options: Any) -> Callable[..., Any]:
    """Return ``app.wsgifunc()`` in ``OpenTelemetryMiddleware``, spans named by route.

    ``options`` go to the middleware (``tracer_provider=``, ``request_hook=``...).
    The exception reporter is process-wide (``web.config.error_reporters``).
    """
    with require("otel", "webmini.contrib.otel"):
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    global _tracer
    provider = options.get("tracer_provider")
    if provider is not None:
        _tracer = trace.get_tracer("webmini.contrib.otel", tracer_provider=provider)
    add_error_reporter(report)
    if processor not in app.processors:
        app.add_processor(processor)
    return OpenTelemetryMiddleware(app.wsgifunc(), **options)  # type: ignore[no-any-return]
