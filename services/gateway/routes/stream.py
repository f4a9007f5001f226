"""``POST /v1/stream/tickets`` here; ``GET /v1/stream`` is declared here and served elsewhere.

The live stream is served by the asyncio stream server (``kith gateway stream``,
:mod:`kith.gateway.stream_server`), not by this Flask app: an open stream must not hold a
server worker thread. Its declaration stays in the registry so that the OpenAPI document and
``/docs`` describe the whole public API; the stream server validates its query with
:data:`STREAM_QUERY` from here.
"""

from __future__ import annotations

from kith.gateway.errors import ApiError
from kith.gateway.operations import api
from kith.gateway.schema import integer, obj, string
from kith.gateway.views import Call, Reply

TICKET = string(1, 512, pattern="^[A-Za-z0-9_-]+$",
                description="from POST /v1/stream/tickets (instead of Authorization)")
STREAM_QUERY = {"ticket": TICKET}


@api.operation("POST", "/v1/stream/tickets", status=201,
               summary="A single-use ticket (60 s) to open /v1/stream without headers",
               tag="stream", response=obj({"ticket": string(), "expires_in": integer()}))
def create_stream_ticket(call: Call) -> Reply:
    tickets = call.gw.tickets
    return Reply(201, {"ticket": tickets.issue(call.me), "expires_in": tickets.ttl_s})


# auth=False: the caller is authenticated by the stream server, by bearer token or by ticket.
@api.operation("GET", "/v1/stream",
               summary="Live events for me: feed.entry, message.new, message.read (SSE)",
               tag="stream", stream=True, auth=False, errors=(401,), query=STREAM_QUERY,
               server="stream")
def stream(call: Call) -> Reply:
    """Never routed by the Flask app (``server="stream"``): the stream server answers it."""
    raise ApiError(404, "not_found", "GET /v1/stream is served by the stream server")
