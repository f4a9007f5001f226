"""``GET /v1/stream``: Server-Sent Events for the caller."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

from flask import Response, stream_with_context

from kith.gateway.api import api
from kith.gateway.errors import ApiError
from kith.gateway.http import Call
from kith.gateway.metrics import STREAMS

READY_TIMEOUT_S = 10.0


@api.operation("GET", "/v1/stream",
               summary="Live events for me: feed.entry, message.new, message.read (SSE)",
               tag="stream", stream=True)
def stream(call: Call) -> Response:
    gw, principal = call.gw, call.me
    heartbeat, lifetime = gw.config.stream_heartbeat_s, gw.config.stream_max_s

    def events() -> Iterator[bytes]:
        # Subscribed inside the generator, so that the finally below always unsubscribes.
        sub = gw.hub.subscribe(principal.user_id)
        STREAMS.inc()
        try:
            ready = gw.hub.ready.wait(READY_TIMEOUT_S)
            yield b"retry: 3000\n: " + (b"ready" if ready else b"connecting") + b"\n\n"
            ends = time.monotonic() + lifetime
            while not sub.closed and time.monotonic() < ends:
                if time.time() >= principal.expires_at:
                    yield b"event: session.expired\ndata: {}\n\n"
                    return
                try:
                    event = sub.events.get(timeout=heartbeat)
                except queue.Empty:
                    try:  # a signed-out or deleted account's stream ends too
                        gw.verifier.confirm(principal)
                    except ApiError:
                        yield b"event: session.expired\ndata: {}\n\n"
                        return
                    yield b": ping\n\n"
                    continue
                if event is None:
                    return
                yield event.encode()
        finally:
            gw.hub.unsubscribe(sub)
            STREAMS.dec()

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
