"""Photos on posts, comments and messages: attaching on create, hydrating on read.

Attaching around a create (so a failed create leaves nothing attached):

1. ``Claim`` every id for this request (media checks owner and "not attached
   elsewhere", all or nothing → 400 ``invalid_media``; nothing was created);
2. create the carrier (post, comment, message) as usual;
3. on success ``Attach`` the claim to the new carrier; on failure ``Release``
   it and re-raise the create's error.

If the gateway dies between 2 and 3, the carrier exists without photos and the
claim lapses after 5 minutes (the photos are free again, and expire unattached
after a day if never used). Hydration asks media once per page
(``ListAttached``) for every carrier on it; if media does not answer, the page
is served without photos rather than failing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc

from kith.common.logs import command_id
from kith.common.post_json import photo as photo
from kith.gateway.schema import array, integer, obj, string, uuid_string
from kith.gateway.views import Call
from kith.protos import media_pb2

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_MEDIA_IDS = 10
# More than MAX_MEDIA_IDS is media's to refuse (400 invalid_media, as API.md says);
# the schema only bounds the input.
MEDIA_IDS = array(uuid_string(), 0, 100)
PHOTO = obj({"id": uuid_string(), "width": integer(), "height": integer(), "url": string(),
             "thumb_url": string()}, closed=False)
PHOTOS = array(PHOTO)
Carrier = tuple[str, str, str]  # (kind, id, parent id)


_CLAIMS = uuid.UUID("5c0e3a4e-52b4-4a8e-9d43-6f0c2f3f1a11")  # namespace of derived claims


def create_with_media(call: Call, media_ids: Sequence[str], create: Callable[[], T],
                      carrier_of: Callable[[T], Carrier], retry_key: str | None = None) -> T:
    """Run ``create``; attach ``media_ids`` to what it created, or leave nothing attached.

    ``retry_key`` names a command that ``create`` itself makes idempotent (a message's
    ``client_message_id``): the claim is derived from it, so a retry after the photos
    were attached finds them attached by the same claim and returns the first result.
    """
    if not media_ids:
        return create()
    media = call.gw.clients.media
    # A retry of the same command (its client id, or its Idempotency-Key's command id)
    # claims under the same id, and finds its photos attached by the first attempt.
    retry_key = retry_key or command_id.get()
    claim_id = str(uuid.uuid5(_CLAIMS, f"{call.user_id}\n{retry_key}") if retry_key
                   else uuid.uuid4())
    call.rpc(media.Claim, media_pb2.ClaimRequest(actor_id=call.user_id, claim_id=claim_id,
                                                 media_ids=list(media_ids)))
    try:
        created = create()
    except BaseException:
        try:
            media.Release(media_pb2.ReleaseRequest(actor_id=call.user_id, claim_id=claim_id))
        except grpc.RpcError as exc:  # the claim lapses by itself
            log.warning("could not release photo claim %s: %s", claim_id, exc)
        raise
    kind, carrier_id, parent_id = carrier_of(created)
    call.rpc(media.Attach, media_pb2.AttachRequest(
        actor_id=call.user_id, claim_id=claim_id,
        carrier=media_pb2.Carrier(kind=kind, id=carrier_id, parent_id=parent_id)))
    return created


def photos_of(call: Call, carriers: Iterable[Carrier]) -> dict[str, list[dict[str, Any]]]:
    """Carrier id → its photos, for a whole page in one call (empty if media is down)."""
    wanted = [media_pb2.Carrier(kind=k, id=i, parent_id=p) for k, i, p in carriers]
    if not wanted:
        return {}
    try:
        reply = call.gw.clients.media.ListAttached(media_pb2.ListAttachedRequest(
            actor_id=call.user_id, carriers=wanted[:200]))
    except grpc.RpcError as exc:
        log.warning("photos left out: media did not answer (%s)", exc.code())
        return {}
    return {c.carrier.id: [photo(i) for i in c.items] for c in reply.items}


def with_photos(items: list[dict[str, Any]], photos: dict[str, list[dict[str, Any]]]
                ) -> list[dict[str, Any]]:
    """Set ``media`` on each rendered item (by its ``id``); returns ``items``."""
    for item in items:
        item["media"] = photos.get(item["id"], [])
    return items
