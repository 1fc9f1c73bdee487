"""Error reporting and tracing with the real SDKs: sentry-sdk sending envelopes to a
local HTTP sink, OpenTelemetry's SDK with its InMemorySpanExporter."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import gevent
import pytest
import sentry_sdk
from gevent.pywsgi import WSGIServer
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from support.failing import Boom, Div, Stream, serve_ws_and_fail

import webmini as web
from webmini.config import config
from webmini.contrib import otel
from webmini.contrib import sentry as webmini_sentry
from webmini.testing import TestClient

provider = TracerProvider()
exporter = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("tests")


class Work:
    def GET(self, n: str) -> str:
        with tracer.start_as_current_span("child") as child:
            child.set_attribute("n", n)
            gevent.sleep(0.02)  # the other greenlets run meanwhile
            with tracer.start_as_current_span("grandchild") as grandchild:
                grandchild.set_attribute("n", n)
                gevent.sleep(0.01)
        return n


class Item:
    def GET(self, n: str) -> str:
        raise LookupError(f"item {n}")


class Order:
    def POST(self) -> str:
        order = web.json()
        return str(order["total"] / order["items"])


def make_app() -> web.application:
    api = web.application(("/items/([0-9]+)", Item), {})
    return web.application(("/div/([0-9]+)", Div, "/stream", Stream, "/work/([0-9]+)", Work,
                            "/api", api, "/ws", Boom, "/order", Order), {})


@pytest.fixture(autouse=True)
def _own_reporters(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test's registrations go to a list of its own; the Sentry
    # integration's (made once per process by setup_once) is there from the start.
    monkeypatch.setitem(config, "error_reporters", [webmini_sentry.report])
    monkeypatch.setitem(config, "access_log", True)  # request ids


# -- Sentry ------------------------------------------------------------------

class Sink:
    """A tiny gevent.pywsgi server taking Sentry envelopes on a loopback port."""

    def __init__(self) -> None:
        self.items: list[tuple[dict[str, Any], Any]] = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None)
        self.server.start()
        self.dsn = f"http://public@127.0.0.1:{self.server.server_port}/1"

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        assert environ["PATH_INFO"] == "/api/1/envelope/"
        body = environ["wsgi.input"].read()
        if environ.get("HTTP_CONTENT_ENCODING") == "gzip":
            body = gzip.decompress(body)
        _, _, rest = body.partition(b"\n")  # the envelope header
        while rest.strip():
            line, _, rest = rest.partition(b"\n")
            header = json.loads(line)
            if "length" in header:
                payload, rest = rest[:header["length"]], rest[header["length"] + 1:]
            else:
                payload, _, rest = rest.partition(b"\n")
            self.items.append((header, json.loads(payload)))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    def events(self) -> list[dict[str, Any]]:
        """The error events received once the SDK flushed."""
        sentry_sdk.flush(timeout=10)
        return [p for h, p in self.items if h["type"] == "event"]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: an inactive client for the tests that follow
    s.server.stop(timeout=2)


def test_sentry_init_alone_sends_nothing_for_a_handler_error(sink: Sink) -> None:
    sentry_sdk.init(dsn=sink.dsn)
    assert TestClient(make_app().wsgifunc()).get("/div/0").status_code == 500
    assert sink.events() == []


def test_sentry_integration_sends_the_error_with_request_route_and_id(sink: Sink) -> None:
    sentry_sdk.init(dsn=sink.dsn, integrations=[webmini_sentry.WebminiIntegration()])
    r = TestClient(make_app().wsgifunc()).get(
        "/div/0?x=1", headers={"X-Request-ID": "req-42", "Cookie": "session=secret",
                               "Authorization": "Bearer secret"})
    assert r.status_code == 500
    [event] = sink.events()
    [exc] = event["exception"]["values"]
    assert exc["type"] == "ZeroDivisionError"
    assert exc["mechanism"] == {"type": "webmini", "handled": False, "exception_id": 0}
    request = event["request"]
    assert request["url"] == "http://localhost:8080/div/0" and request["method"] == "GET"
    assert request["query_string"] == "x=1"
    assert request["headers"]["Cookie"] == "[Filtered]"
    assert request["headers"]["Authorization"] == "[Filtered]"
    assert event["transaction"] == "/div/([0-9]+)"
    assert event["tags"] == {"route": "/div/([0-9]+)", "request_id": "req-42",
                             "webmini.stage": "request"}


def test_sentry_event_has_the_body_the_handler_parsed(sink: Sink) -> None:
    sentry_sdk.init(dsn=sink.dsn, integrations=[webmini_sentry.WebminiIntegration()])
    r = TestClient(make_app().wsgifunc()).post("/order", json={"total": 10, "items": 0})
    assert r.status_code == 500
    [event] = sink.events()
    assert event["request"]["method"] == "POST"
    assert event["request"]["data"] == {"total": 10, "items": 0}


def test_sentry_gets_stream_and_websocket_errors_with_the_sub_app_route(sink: Sink) -> None:
    sentry_sdk.init(dsn=sink.dsn, integrations=[webmini_sentry.WebminiIntegration()])
    wsgi = make_app().wsgifunc()
    client = TestClient(wsgi, validate=False)
    assert client.get("/api/items/3").status_code == 500
    with pytest.raises(KeyError):
        client.get("/stream")
    serve_ws_and_fail(wsgi)
    events = sink.events()
    got = [(e["exception"]["values"][0]["type"], e["tags"]["webmini.stage"], e["tags"]["route"],
            e["request"]["url"]) for e in events]
    assert got == [
        ("LookupError", "request", "/api/items/([0-9]+)", "http://localhost:8080/api/items/3"),
        ("KeyError", "stream", "/stream", "http://localhost:8080/stream"),
        ("ValueError", "websocket", "/ws", f"http://{events[2]['request']['headers']['Host']}/ws"),
    ]


def test_sentry_middleware_and_propagation_send_one_event_and_route_named_spans(
        sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    sentry_sdk.init(dsn=sink.dsn, traces_sample_rate=1.0)
    monkeypatch.setitem(config, "propagate_exceptions", True)
    wsgi = webmini_sentry.instrument(make_app())
    with pytest.raises(ZeroDivisionError):
        TestClient(wsgi, validate=False).get("/div/0")
    assert TestClient(wsgi).get("/div/1").text == "1"
    [event] = sink.events()  # the middleware's copy of the propagated error is a duplicate
    assert event["exception"]["values"][0]["mechanism"]["type"] == "webmini"
    spans = [span for h, p in sink.items if h["type"] == "span" for span in p["items"]]
    assert sorted((s["name"], s["status"]) for s in spans if s["is_segment"]) == [
        ("/div/([0-9]+)", "error"), ("/div/([0-9]+)", "ok")]


# -- OpenTelemetry -------------------------------------------------------------

@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


def server_span(finished: Any, path: str) -> Any:
    found = [s for s in finished if s.kind.name == "SERVER"
             and (s.attributes.get("url.path")
                  or urlsplit(s.attributes.get("http.url", "")).path) == path]
    assert len(found) == 1, [(s.name, sorted(s.attributes.items())) for s in finished]
    return found[0]


def test_otel_middleware_alone_records_no_exception_event(spans: InMemorySpanExporter) -> None:
    wsgi = OpenTelemetryMiddleware(make_app().wsgifunc(), tracer_provider=provider)
    assert TestClient(wsgi).get("/div/0").status_code == 500
    span = server_span(spans.get_finished_spans(), "/div/0")
    assert span.status.status_code is StatusCode.ERROR and span.events == ()
    assert span.name == "GET /div/0"  # the raw path


def test_otel_instrument_records_the_exception_and_names_the_span_by_route(
        spans: InMemorySpanExporter) -> None:
    wsgi = otel.instrument(make_app(), tracer_provider=provider)
    r = TestClient(wsgi).get("/div/0", headers={"X-Request-ID": "req-7"})
    assert r.status_code == 500
    span = server_span(spans.get_finished_spans(), "/div/0")
    assert span.name == "GET /div/([0-9]+)"
    assert span.attributes["http.route"] == "/div/([0-9]+)"
    assert span.attributes["webmini.request_id"] == "req-7"
    assert span.status.status_code is StatusCode.ERROR
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ZeroDivisionError"
    assert "1 // int(n)" in event.attributes["exception.stacktrace"]
    assert TestClient(wsgi).get("/api/items/5").status_code == 500
    span = server_span(spans.get_finished_spans(), "/api/items/5")
    assert span.attributes["http.route"] == "/api/items/([0-9]+)"
    assert span.events[0].attributes["exception.type"] == "LookupError"


def test_otel_reporter_records_nothing_for_an_app_it_does_not_wrap(
        spans: InMemorySpanExporter) -> None:
    otel.instrument(make_app(), tracer_provider=provider)  # the reporter is process-wide
    assert TestClient(make_app().wsgifunc()).get("/div/0").status_code == 500
    assert spans.get_finished_spans() == ()


def test_otel_streamed_error_is_recorded_on_the_request_span(spans: InMemorySpanExporter) -> None:
    wsgi = otel.instrument(make_app(), tracer_provider=provider)
    with pytest.raises(KeyError):
        TestClient(wsgi, validate=False).get("/stream")
    span = server_span(spans.get_finished_spans(), "/stream")
    assert [e.attributes["exception.type"] for e in span.events if e.name == "exception"] \
        == ["KeyError"]
    assert span.status.status_code is StatusCode.ERROR


def test_otel_websocket_error_gets_a_span_under_the_upgrade_span(
        spans: InMemorySpanExporter) -> None:
    serve_ws_and_fail(otel.instrument(make_app(), tracer_provider=provider))
    finished = spans.get_finished_spans()
    upgrade = server_span(finished, "/ws")
    [own] = [s for s in finished if s.name == "websocket /ws"]
    assert own.parent.span_id == upgrade.context.span_id
    assert own.context.trace_id == upgrade.context.trace_id
    assert own.events[0].attributes["exception.type"] == "ValueError"
    assert own.status.status_code is StatusCode.ERROR


def test_otel_child_spans_keep_their_parent_across_ten_concurrent_greenlets(
        spans: InMemorySpanExporter) -> None:
    server = WSGIServer(("127.0.0.1", 0), otel.instrument(make_app(), tracer_provider=provider),
                        log=None)
    server.start()
    try:
        def get(n: int) -> str:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/work/{n}",
                                        timeout=10) as reply:
                return str(reply.read().decode())

        jobs = [gevent.spawn(get, n) for n in range(10)]
        gevent.joinall(jobs, raise_error=True)
        assert [j.value for j in jobs] == [str(n) for n in range(10)]
    finally:
        server.stop(timeout=2)
    finished = spans.get_finished_spans()
    for n in range(10):
        request = server_span(finished, f"/work/{n}")
        assert request.name == "GET /work/([0-9]+)"
        [child] = [s for s in finished if s.name == "child" and s.attributes["n"] == str(n)]
        [grand] = [s for s in finished if s.name == "grandchild" and s.attributes["n"] == str(n)]
        assert child.parent.span_id == request.context.span_id
        assert grand.parent.span_id == child.context.span_id
        assert {child.context.trace_id, grand.context.trace_id} == {request.context.trace_id}
    assert len({server_span(finished, f"/work/{n}").context.trace_id for n in range(10)}) == 10
