"""One post, one trace: the gateway's request, the post service's call, the relay's publish and
the fan-out worker's apply all belong to the same OpenTelemetry trace, the context carried in
gRPC metadata, the event's metadata and the Kafka record's ``traceparent`` header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kith.common import tracing
from kith.common.config import Settings
from kith.common.service import RunningService
from kith.gateway.app import create_app
from tests.integration.gateway.harness import Gateway, gateway_config, serve_app
from tests.support.waiting import eventually


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)


def _wait_for(exporter: InMemorySpanExporter, name: str, trace_id: int | None = None,
              timeout: float = 30.0) -> list[ReadableSpan]:
    """The finished spans called ``name`` (in trace ``trace_id``), once there is one."""
    found = eventually(lambda: list(exporter.get_finished_spans()),
                       lambda spans: any(s.name == name and trace_id in (None, s.context.trace_id)
                                         for s in spans),
                       timeout=timeout, what=f"a span {name!r}")
    return [s for s in found if s.name == name and trace_id in (None, s.context.trace_id)]


def test_a_post_is_one_trace_from_the_request_to_the_feed(
    stack: tuple[Settings, dict[str, RunningService]], spans: InMemorySpanExporter,
) -> None:
    settings, running = stack
    app = create_app(settings, gateway_config())
    server, url = serve_app(app)
    try:
        gateway = Gateway(url, settings, running)
        alice = gateway.signup("alice")
        niche = alice.post("/v1/niches", {"name": "Traced", "kind": "friends"}).json()
        spans.clear()

        posted = alice.post(f"/v1/niches/{niche['id']}/posts", {"text": "follow me"})
        assert posted.status_code == 201, posted.text

        (request,) = _wait_for(spans, "POST /v1/niches/<niche_id>/posts")
        # (the niche's own events may still be reaching the fan-out in their own trace)
        (apply,) = _wait_for(spans, "feed.fanout apply", request.context.trace_id)
    finally:
        server.shutdown()
        app.extensions["kith"].close()

    trace_id = request.context.trace_id
    in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    by_kind = {(s.kind, s.name.split(" ")[0]) for s in in_trace}
    assert (SpanKind.SERVER, "POST") in by_kind  # the gateway
    post_calls = [s for s in in_trace if s.name.startswith("grpc.server /kith.post.")]
    assert post_calls, sorted(s.name for s in in_trace)  # the post service
    assert any(s.kind == SpanKind.CLIENT for s in in_trace)
    (publish,) = [s for s in in_trace if s.name == f"relay publish {settings.topic('post')}"]
    assert apply.kind == SpanKind.CONSUMER
    # The chain of parents: fan-out ← relay ← the post service's handler ← … ← the request.
    assert apply.parent is not None and apply.parent.span_id == publish.context.span_id
    parents = {s.context.span_id: s for s in in_trace}
    hop, chain = publish, []
    while hop.parent is not None:
        hop = parents[hop.parent.span_id]
        chain.append(hop.name)
    assert chain[-1] == request.name and any(n.startswith("grpc.server /kith.post.") for n in
                                             chain), chain


def test_tracing_is_off_unless_configured() -> None:
    assert not tracing.enabled()
    assert not tracing.configure("post", {})
    assert tracing.with_trace_context({"a": 1}) == {"a": 1}
    assert tracing.produce_headers("t", {"traceparent": "x"}, [("k", b"v")]) == [("k", b"v")]
