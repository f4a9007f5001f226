"""The MediaService servicer: validates every request, calls the application, maps results.

The two streaming methods map domain errors to statuses themselves (the shared
interceptor wraps unary calls only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc

from kith.common.errors import DomainError
from kith.common.rpc import ERROR_CODE_KEY, ERROR_DETAILS_KEY
from kith.common.validation import Fields
from kith.media.application import (
    MAX_MEDIA_PER_CARRIER,
    MAX_UPLOAD_BYTES,
    CarrierRef,
    MediaApplication,
    MediaView,
    TooLarge,
    invalid_media,
)
from kith.media.carriers import KINDS
from kith.protos import media_pb2 as pb
from kith.protos import media_pb2_grpc

SERVICE_NAME = "kith.media.v1.MediaService"
MAX_CARRIERS = 200
T = TypeVar("T")


def _info(view: MediaView) -> pb.MediaInfo:
    return pb.MediaInfo(id=view.id, uploader_id=view.uploader_id, content_type=view.content_type,
                        width=view.width, height=view.height, bytes=view.bytes,
                        uploaded_at_ms=view.uploaded_at_ms)


def _abort(context: grpc.ServicerContext, exc: DomainError) -> None:
    context.set_trailing_metadata(((ERROR_CODE_KEY, exc.code),
                                   (ERROR_DETAILS_KEY, json.dumps(exc.details))))
    context.abort(exc.status, exc.message)


def _mapped(context: grpc.ServicerContext, call: Callable[[], T]) -> T:
    try:
        return call()
    except DomainError as exc:
        _abort(context, exc)
        raise  # unreachable: abort raises


def _carrier(fields: Fields, name: str, carrier: pb.Carrier) -> CarrierRef:
    if carrier.kind not in KINDS:
        fields.add(f"{name}.kind", "post, comment or message")
    carrier_id = fields.uuid(f"{name}.id", carrier.id)
    parent = carrier.parent_id
    if carrier.kind in ("comment", "message"):
        parent = fields.uuid(f"{name}.parent_id", parent)
    return CarrierRef(carrier.kind, carrier_id, parent if carrier.kind != "post" else "")


class MediaServicer(media_pb2_grpc.MediaServiceServicer):
    def __init__(self, app: MediaApplication) -> None:
        self.app = app

    def Upload(self, request_iterator: Iterator[pb.UploadChunk],
               context: grpc.ServicerContext) -> pb.MediaInfo:
        def run() -> pb.MediaInfo:
            with self.app.intake:
                actor, declared = "", ""
                parts: list[bytes] = []
                size = 0
                for i, chunk in enumerate(request_iterator):
                    if i == 0:
                        actor, declared = chunk.actor_id, chunk.declared_content_type
                    parts.append(chunk.data)
                    size += len(chunk.data)
                    if size > MAX_UPLOAD_BYTES:
                        raise TooLarge("a photo is at most 10 MiB")
                fields = Fields()
                actor = fields.uuid("actor_id", actor)
                if not size:
                    fields.add("data", "is required")
                fields.done()
                data = b"".join(parts)
                del parts
                return _info(self.app.upload(actor, declared, data))

        return _mapped(context, run)

    def Fetch(self, request: pb.FetchRequest,
              context: grpc.ServicerContext) -> Iterator[pb.FetchChunk]:
        def opened():  # type: ignore[no-untyped-def]
            fields = Fields()
            actor = fields.uuid("actor_id", request.actor_id)
            media_id = fields.uuid("media_id", request.media_id)
            fields.done()
            return self.app.open(actor, media_id, request.size or "display")

        variant, uploader, media_id = _mapped(context, opened)
        head = pb.FetchChunk(content_type=variant.content_type, length=variant.length,
                             etag=variant.etag)
        if request.if_none_match and variant.etag in _etags(request.if_none_match):
            head.not_modified = True
            yield head
            return
        first = True
        for data in self.app.read(uploader, media_id, request.size or "display", variant):
            if first:
                head.data = data
                yield head
                first = False
            else:
                yield pb.FetchChunk(data=data)
        if first:
            yield head

    def GetMedia(self, request: pb.GetMediaRequest, context: grpc.ServicerContext
                 ) -> pb.MediaInfo:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        media_id = fields.uuid("media_id", request.media_id)
        fields.done()
        return _info(self.app.get(actor, media_id))

    def Claim(self, request: pb.ClaimRequest, context: grpc.ServicerContext) -> pb.Empty:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        claim_id = fields.uuid("claim_id", request.claim_id)
        ids = fields.uuids("media_ids", request.media_ids, MAX_MEDIA_PER_CARRIER)
        if not request.media_ids:
            fields.add("media_ids", "name at least one photo")
        elif len(set(ids)) != len(ids):
            fields.add("media_ids", "each photo at most once")
        if fields.problems:
            raise invalid_media("media_ids are invalid", fields.problems)
        self.app.claim(actor, claim_id, ids)
        return pb.Empty()

    def Attach(self, request: pb.AttachRequest, context: grpc.ServicerContext) -> pb.Empty:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        claim_id = fields.uuid("claim_id", request.claim_id)
        carrier = _carrier(fields, "carrier", request.carrier)
        fields.done()
        self.app.attach(actor, claim_id, carrier)
        return pb.Empty()

    def Release(self, request: pb.ReleaseRequest, context: grpc.ServicerContext) -> pb.Empty:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        claim_id = fields.uuid("claim_id", request.claim_id)
        fields.done()
        self.app.release(actor, claim_id)
        return pb.Empty()

    def ListAttached(self, request: pb.ListAttachedRequest, context: grpc.ServicerContext
                     ) -> pb.ListAttachedResponse:
        fields = Fields()
        fields.uuid("actor_id", request.actor_id)
        if len(request.carriers) > MAX_CARRIERS:
            fields.add("carriers", f"at most {MAX_CARRIERS}")
        carriers = [_carrier(fields, f"carriers[{i}]", c)
                    for i, c in enumerate(request.carriers)]
        fields.done()
        found = self.app.list_attached(carriers)
        reply = pb.ListAttachedResponse()
        for carrier, original in zip(carriers, request.carriers, strict=True):
            if views := found.get(carrier.id):
                reply.items.append(pb.CarrierMedia(carrier=original,
                                                   items=[_info(v) for v in views]))
        return reply


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}
