"""Photos (media): upload as the raw body, fetch as a stream of chunks.

Neither direction holds a whole image in the gateway: the upload body is read
in chunks and forwarded as a gRPC client stream, and a fetch is relayed chunk
by chunk from media's server stream. The upload route has a limit of its own
(10 MiB, API.md) instead of the JSON body limit (``KITH_GATEWAY_MAX_BODY_BYTES``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import grpc
from flask import Response, request
from werkzeug.exceptions import HTTPException

from kith.gateway.errors import ApiError, from_rpc_error
from kith.gateway.operations import api
from kith.gateway.schema import integer, obj, string, uuid_string
from kith.gateway.views import Call, Reply, request_body
from kith.protos import media_pb2

TAG = "media"
CHUNK = 256 * 1024
MAX_MEDIA_BYTES = 10 * 1024 * 1024
UPLOAD_DEADLINE_S = 60.0
FETCH_DEADLINE_S = 120.0
UPLOADED = obj({"id": uuid_string(), "content_type": string(), "width": integer(),
                "height": integer(), "bytes": integer()}, closed=False)
SIZE = {**string(enum=["thumb", "display", "original"]), "default": "display"}


def too_large() -> ApiError:
    return ApiError(413, "payload_too_large", "a photo is at most 10 MiB",
                    {"limit_bytes": MAX_MEDIA_BYTES})


@api.operation("POST", "/v1/media", summary="Upload a photo (JPEG, PNG or WebP, the raw body)",
               tag=TAG, status=201, response=UPLOADED, raw_body="image/*",
               max_body_bytes=MAX_MEDIA_BYTES)
def upload_media(call: Call) -> Reply:
    if request.content_length is not None and request.content_length > MAX_MEDIA_BYTES:
        raise too_large()
    declared = request.headers.get("Content-Type", "")
    # With an Idempotency-Key the body was read (≤ 10 MiB) to fingerprint the request;
    # without one it is streamed straight through.
    stream = io.BytesIO(request_body()) \
        if request.headers.get("Idempotency-Key") is not None else request.stream
    seen = 0

    def chunks() -> Iterator[media_pb2.UploadChunk]:
        nonlocal seen
        yield media_pb2.UploadChunk(actor_id=call.user_id, declared_content_type=declared)
        while True:
            try:
                data = stream.read(CHUNK)
            except HTTPException:  # werkzeug's own limit on a body without Content-Length
                seen = MAX_MEDIA_BYTES + 1
                raise  # gRPC cancels the upload: media stores nothing
            if not data:
                return
            seen += len(data)
            yield media_pb2.UploadChunk(data=data)  # media refuses past 10 MiB
            if seen > MAX_MEDIA_BYTES:
                return

    try:
        info = call.gw.clients.media.Upload(chunks(), timeout=UPLOAD_DEADLINE_S)
    except grpc.RpcError as exc:
        if seen > MAX_MEDIA_BYTES or exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise too_large() from None
        raise from_rpc_error(exc) from None
    if seen > MAX_MEDIA_BYTES:
        raise too_large()
    return Reply(201, {"id": info.id, "content_type": info.content_type, "width": info.width,
                       "height": info.height, "bytes": info.bytes},
                 {"Location": f"/v1/media/{info.id}"})


@api.operation("GET", "/v1/media/{media_id}",
               summary="A photo's bytes: to its uploader and whoever can see a carrier of it",
               tag=TAG, query={"size": SIZE})
def get_media(call: Call) -> Response:
    replies = call.gw.clients.media.Fetch(
        media_pb2.FetchRequest(actor_id=call.user_id, media_id=call.params["media_id"],
                               size=call.query["size"],
                               if_none_match=request.headers.get("If-None-Match", "")),
        timeout=FETCH_DEADLINE_S)
    try:
        head = next(replies)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
    except StopIteration:
        raise ApiError(502, "upstream_error", "media sent no reply") from None
    headers = {"ETag": head.etag, "Cache-Control": "private, max-age=86400"}
    if head.not_modified:
        replies.cancel()
        return Response(status=304, headers=headers)

    def body() -> Iterator[bytes]:
        try:
            if head.data:
                yield head.data
            for chunk in replies:
                yield chunk.data
        except grpc.RpcError:
            return  # the connection is cut short; the client sees a short body
        finally:
            replies.cancel()

    headers["Content-Length"] = str(head.length)
    return Response(body(), status=200, mimetype=head.content_type, headers=headers,
                    direct_passthrough=True)
