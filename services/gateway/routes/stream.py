"""``GET /v1/stream``: Server-Sent Events for the caller."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

from flask import Response, request, stream_with_context

from kith.gateway.auth import Principal
from kith.gateway.errors import ApiError
from kith.gateway.live import StreamEvent, StreamLimitReached
from kith.gateway.metrics import STREAMS
from kith.gateway.operations import api
from kith.gateway.schema import integer, obj, string
from kith.gateway.views import Call, Reply

READY_TIMEOUT_S = 10.0
LIMIT_RETRY_AFTER_S = 5
PING = b": ping\n\n"
EXPIRED = b"event: session.expired\ndata: {}\n\n"


TICKET = string(1, 512, pattern="^[A-Za-z0-9_-]+$",
                description="from POST /v1/stream/tickets (instead of Authorization)")


@api.operation("POST", "/v1/stream/tickets", status=201,
               summary="A single-use ticket (60 s) to open /v1/stream without headers",
               tag="stream", response=obj({"ticket": string(), "expires_in": integer()}))
def create_stream_ticket(call: Call) -> Reply:
    tickets = call.gw.tickets
    return Reply(201, {"ticket": tickets.issue(call.me), "expires_in": tickets.ttl_s})


# auth=False: the caller is authenticated here, by bearer token or by ticket.
@api.operation("GET", "/v1/stream",
               summary="Live events for me: feed.entry, message.new, message.read (SSE)",
               tag="stream", stream=True, auth=False, errors=(401,),
               query={"ticket": TICKET})
def stream(call: Call) -> Response:
    gw, principal = call.gw, _caller(call)
    heartbeat, lifetime = gw.config.stream_heartbeat_s, gw.config.stream_max_s
    # Taken before the response starts, so that a full process or user can still get a 429/503.
    try:
        sub = gw.hub.subscribe(principal.user_id, _last_event_id())
    except StreamLimitReached as exc:
        raise _refusal(exc) from None
    STREAMS.inc()

    def release() -> None:
        if gw.hub.unsubscribe(sub):
            STREAMS.dec()

    def session_ended() -> bool:
        """Expired token, or a signed-out or deleted account (``confirm`` is cached)."""
        if time.time() >= principal.expires_at:
            return True
        try:
            gw.verifier.confirm(principal)
        except ApiError:
            return True
        return False

    def events() -> Iterator[bytes]:
        try:
            ready = gw.hub.ready.wait(READY_TIMEOUT_S)
            yield b"retry: 3000\n: " + (b"ready" if ready else b"connecting") + b"\n\n"
            for missed in gw.hub.catch_up(sub):  # after Last-Event-ID, before live events
                yield missed.encode()
            ends = time.monotonic() + lifetime
            while not sub.closed and time.monotonic() < ends:
                event: StreamEvent | bytes | None
                try:
                    event = sub.events.get(timeout=heartbeat)
                except queue.Empty:
                    event = PING
                if event is None:
                    return
                if session_ended():  # before every event, busy or idle
                    yield EXPIRED
                    return
                yield event if isinstance(event, bytes) else event.encode()
        finally:
            release()

    response = Response(stream_with_context(events()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(release)  # also when the body is never iterated
    return response


def _last_event_id() -> str | None:
    """Where a reconnecting client stopped: the ``Last-Event-ID`` header (what
    ``EventSource`` sends) or the ``last_event_id`` query parameter."""
    return request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or None


def _caller(call: Call) -> Principal:
    """The bearer of ``?ticket=`` (redeemed, so single use), else of the Authorization header."""
    if ticket := call.query.get("ticket"):
        return call.gw.tickets.redeem(ticket)
    return call.gw.verifier.authenticate(request.headers.get("Authorization"))


def _refusal(exc: StreamLimitReached) -> ApiError:
    headers = {"Retry-After": str(LIMIT_RETRY_AFTER_S)}
    if exc.scope == "user":
        return ApiError(429, "too_many_streams",
                        f"at most {exc.limit} live streams per user may be open at once",
                        {"limit": exc.limit}, headers)
    return ApiError(503, "unavailable", "this server has no room for another live stream;"
                    " retry shortly", headers=headers)
