"""The media service over real gRPC: chunked uploads, events without bytes, claims, expiry."""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Iterator

import grpc
import psycopg
import pytest
from PIL import Image

from kith.common.rpc import error_info
from kith.media.entrypoint import SPEC
from kith.protos import media_pb2 as pb
from kith.protos import media_pb2_grpc
from tests.support.environment import ServiceStack
from tests.support.rpc import channel
from tests.support.waiting import eventually


def photo_bytes() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((900, 700), 60).convert("RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


def chunked(actor: str, data: bytes, size: int = 8192) -> Iterator[pb.UploadChunk]:
    yield pb.UploadChunk(actor_id=actor, declared_content_type="image/jpeg")
    for start in range(0, len(data), size):
        yield pb.UploadChunk(data=data[start:start + size])


def start_media(stack: ServiceStack, **env: str) -> tuple[media_pb2_grpc.MediaServiceStub, str]:
    stack.settings = dataclasses.replace(stack.settings, extra={**stack.settings.extra, **env})
    stack.start(SPEC)
    stub = media_pb2_grpc.MediaServiceStub(channel(stack.settings.grpc_addr("media"), 20))
    return stub, stack.settings.database_url("media")


def test_a_chunked_upload_is_recorded_without_its_bytes_in_the_events(stack) -> None:
    media, dsn = start_media(stack)
    alice = str(uuid.uuid4())
    data = photo_bytes()
    info = media.Upload(chunked(alice, data))
    assert (info.width, info.height, info.uploader_id) == (900, 700, alice)
    assert media.GetMedia(pb.GetMediaRequest(actor_id=alice, media_id=info.id)).id == info.id
    with pytest.raises(grpc.RpcError) as other:
        media.GetMedia(pb.GetMediaRequest(actor_id=str(uuid.uuid4()), media_id=info.id))
    assert other.value.code() == grpc.StatusCode.NOT_FOUND
    with psycopg.connect(dsn) as conn:
        (payload,) = conn.execute("SELECT payload FROM events WHERE stream_id = %s",
                                  (info.id,)).fetchone()
        stored = conn.execute("SELECT count(*), sum(length(sealed)) FROM media_chunks"
                              " WHERE media_id = %s AND size = 'original'",
                              (info.id,)).fetchone()
    assert len(payload) < 300  # a fact about the photo, never the photo
    assert stored[0] == -(-info.bytes // (256 * 1024)) and stored[1] > info.bytes
    fetched = b"".join(c.data for c in media.Fetch(pb.FetchRequest(
        actor_id=alice, media_id=info.id, size="original")))
    assert len(fetched) == info.bytes and Image.open(io.BytesIO(fetched)).size == (900, 700)


def test_a_photo_is_claimed_by_one_carrier_at_a_time(stack) -> None:
    media, _ = start_media(stack)
    alice = str(uuid.uuid4())
    first = media.Upload(chunked(alice, photo_bytes())).id
    claim, rival = str(uuid.uuid4()), str(uuid.uuid4())
    media.Claim(pb.ClaimRequest(actor_id=alice, claim_id=claim, media_ids=[first]))
    with pytest.raises(grpc.RpcError) as taken:
        media.Claim(pb.ClaimRequest(actor_id=alice, claim_id=rival, media_ids=[first]))
    status, _, code, details = error_info(taken.value)
    assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_media")
    assert details == {"media_ids[0]": "being attached elsewhere"}
    media.Release(pb.ReleaseRequest(actor_id=alice, claim_id=claim))  # the create failed
    media.Claim(pb.ClaimRequest(actor_id=alice, claim_id=rival, media_ids=[first]))
    post = str(uuid.uuid4())
    media.Attach(pb.AttachRequest(actor_id=alice, claim_id=rival,
                                  carrier=pb.Carrier(kind="post", id=post)))
    listed = media.ListAttached(pb.ListAttachedRequest(
        actor_id=alice, carriers=[pb.Carrier(kind="post", id=post)]))
    assert [i.id for c in listed.items for i in c.items] == [first]


def test_photos_left_unattached_expire(stack) -> None:
    media, dsn = start_media(stack, KITH_MEDIA_UNATTACHED_TTL_S="1", KITH_MEDIA_SWEEP_EVERY_S="1")
    alice = str(uuid.uuid4())
    info = media.Upload(chunked(alice, photo_bytes()))

    def state() -> tuple[str, int]:
        with psycopg.connect(dsn) as conn:
            return conn.execute(
                "SELECT state, (SELECT count(*) FROM media_chunks WHERE media_id = m.id)"
                " FROM media m WHERE id = %s", (info.id,)).fetchone()

    assert eventually(state, lambda s: s[0] == "purged", timeout=10) == ("purged", 0)
    with pytest.raises(grpc.RpcError) as gone:
        media.GetMedia(pb.GetMediaRequest(actor_id=alice, media_id=info.id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
