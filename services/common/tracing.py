"""OpenTelemetry traces across a request's whole path: gateway → gRPC services → event store →
outbox relay → Kafka → projections (the fan-out worker).

Off unless configured: :func:`configure` installs a tracer provider exporting by OTLP/gRPC
when ``KITH_OTLP_ENDPOINT`` is set (``KITH_TRACE_SAMPLE_RATIO``, default 1.0, samples root
spans); otherwise every hook below is a no-op costing a context-variable read. Tests
:func:`install` a provider of their own (an in-memory exporter).

How the context travels (W3C ``traceparent``):

* HTTP: the gateway opens a SERVER span per request (:func:`instrument_flask`), continuing
  a ``traceparent`` the client sent.
* gRPC: the client interceptor opens a CLIENT span and puts its context in the call
  metadata (:func:`client_span`); the server interceptor continues it (:func:`server_span`).
* The event store writes the current context into each event's metadata
  (:func:`with_trace_context`), so the trace survives the outbox: the relay publishes later,
  in another process, and opens a PRODUCER span, child of that context, whose own context
  it sends as the Kafka header ``traceparent`` (:func:`produce_headers`).
* A projection runner opens a CONSUMER span per traced record of a batch, children of
  their ``traceparent`` headers, around the batch's transaction (:func:`consume_spans`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINT_VAR = "KITH_OTLP_ENDPOINT"
RATIO_VAR = "KITH_TRACE_SAMPLE_RATIO"
TRACEPARENT = "traceparent"
MAX_CONSUMER_SPANS = 64  # per batch: a 5,000-record rebuild batch must not emit 5,000 spans

_propagator = TraceContextTextMapPropagator()
_tracer: Tracer = trace.NoOpTracer()


def install(provider: Any) -> None:
    """Trace through ``provider`` (an SDK ``TracerProvider``); ``None`` turns tracing off."""
    global _tracer
    _tracer = trace.NoOpTracer() if provider is None else provider.get_tracer("kith")


def configure(service: str, env: Mapping[str, str]) -> bool:
    """Export spans of process ``service`` by OTLP when ``KITH_OTLP_ENDPOINT`` is set; return
    whether tracing is on."""
    endpoint = env.get(ENDPOINT_VAR, "")
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    ratio = float(env.get(RATIO_VAR) or 1.0)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{RATIO_VAR} must be between 0 and 1, got {ratio}")
    provider = TracerProvider(resource=Resource.create({"service.name": f"kith-{service}"}),
                              sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    install(provider)
    return True


def enabled() -> bool:
    return not isinstance(_tracer, trace.NoOpTracer)


def _extract(carrier: Mapping[str, str]) -> otel_context.Context | None:
    return _propagator.extract(carrier) if TRACEPARENT in carrier else None


def _inject(span: trace.Span) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, trace.set_span_in_context(span))
    return carrier


@contextlib.contextmanager
def _span(name: str, kind: SpanKind, parent: otel_context.Context | None = None,
          attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span]:
    with _tracer.start_as_current_span(name, context=parent, kind=kind,
                                       attributes=dict(attributes or {})) as span:
        yield span


# -- HTTP (the gateway) ----------------------------------------------------------------------


def instrument_flask(app: Any) -> None:
    """A SERVER span per request of a Flask ``app``, named by method and route."""
    from flask import g, request

    def start() -> None:
        if not enabled():
            return
        parent = _extract({k.lower(): v for k, v in request.headers.items()})
        route = request.url_rule.rule if request.url_rule else request.path
        span = _tracer.start_span(f"{request.method} {route}", context=parent,
                                  kind=SpanKind.SERVER,
                                  attributes={"http.request.method": request.method,
                                              "http.route": route})
        g.kith_span, g.kith_token = span, otel_context.attach(trace.set_span_in_context(span))

    def status(response: Any) -> Any:
        span = g.get("kith_span")
        if span is not None:
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return response

    def end(_exc: BaseException | None) -> None:
        span = g.pop("kith_span", None)
        if span is not None:
            span.end()
            otel_context.detach(g.pop("kith_token"))

    app.before_request(start)
    app.after_request(status)
    app.teardown_request(end)


# -- gRPC -------------------------------------------------------------------------------------


@contextlib.contextmanager
def client_span(method: str, metadata: list[tuple[str, str]]) -> Iterator[None]:
    """A CLIENT span around a gRPC call; its context is appended to ``metadata``."""
    if not enabled():
        yield
        return
    with _span(f"grpc.client {method}", SpanKind.CLIENT, attributes={"rpc.method": method}
               ) as span:
        metadata.extend(_inject(span).items())
        yield


@contextlib.contextmanager
def server_span(method: str, metadata: Sequence[tuple[str, Any]]) -> Iterator[None]:
    """A SERVER span for a gRPC call, continuing the caller's trace from its metadata."""
    if not enabled():
        yield
        return
    parent = _extract({k: v for k, v in metadata if isinstance(v, str)})
    with _span(f"grpc.server {method}", SpanKind.SERVER, parent,
               {"rpc.method": method}):
        yield


@contextlib.contextmanager
def command_span(name: str) -> Iterator[None]:
    """An INTERNAL span ``command <name>`` around one command (all its attempts)."""
    if not enabled():
        yield
        return
    with _span(f"command {name}", SpanKind.INTERNAL, attributes={"kith.command": name}):
        yield


# -- events: store → relay → Kafka → projections ------------------------------------------


def with_trace_context(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` plus the current trace context (when a span is recording)."""
    span = trace.get_current_span()
    if not enabled() or not span.get_span_context().is_valid:
        return metadata
    return {**metadata, **_inject(span)}


def produce_headers(topic: str, metadata: Mapping[str, Any],
                    headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``headers`` plus the ``traceparent`` of a PRODUCER span, child of the trace recorded in
    the event's ``metadata`` (untraced events pass unchanged)."""
    if not enabled() or TRACEPARENT not in metadata:
        return headers
    parent = _extract({k: v for k, v in metadata.items() if isinstance(v, str)})
    with _span(f"relay publish {topic}", SpanKind.PRODUCER, parent,
               {"messaging.system": "kafka", "messaging.destination.name": topic}) as span:
        return [*headers, *((k, v.encode()) for k, v in _inject(span).items())]


@contextlib.contextmanager
def consume_spans(projection: str, messages: Sequence[Any]) -> Iterator[None]:
    """CONSUMER spans ``<projection> apply``, one per traced record (at most
    :data:`MAX_CONSUMER_SPANS`), open around a batch's application."""
    if not enabled():
        yield
        return
    spans = []
    for msg in messages:
        headers = {k: v.decode() for k, v in (msg.headers() or []) if k == TRACEPARENT and v}
        if headers:
            spans.append(_tracer.start_span(
                f"{projection} apply", context=_extract(headers), kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "kafka",
                            "messaging.destination.name": msg.topic(),
                            "messaging.kafka.offset": msg.offset()}))
            if len(spans) == MAX_CONSUMER_SPANS:
                break
    try:
        yield
    except BaseException:
        for span in spans:
            span.set_status(Status(StatusCode.ERROR))
        raise
    finally:
        for span in spans:
            span.end()
