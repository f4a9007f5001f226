"""``GET /v1/stream``: live feed entries and message events reach exactly the right people."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from kith.protos import media_pb2, media_pb2_grpc
from tests.integration.gateway.harness import (
    Client,
    EventStream,
    Gateway,
    assert_error,
    gateway_config,
    served_gateway,
    served_stream,
    try_stream,
)
from tests.integration.media.test_media_photos import uploaded
from tests.support.rpc import channel
from tests.support.waiting import eventually


def test_stream_delivers_feed_entries_and_messages_only_to_those_who_may_see_them(
        gateway: Gateway) -> None:
    ann, ben, cat, dee = (gateway.signup(n) for n in ("ann", "ben", "cat", "dee"))
    niche = ann.post("/v1/niches", {"name": "Stream Family", "kind": "family"}).json()
    code = ann.post(f"/v1/niches/{niche['id']}/invites", {"max_uses": 2}).json()["code"]
    assert ben.post(f"/v1/invites/{code}/accept").status_code == 200
    assert dee.post(f"/v1/invites/{code}/accept").status_code == 200
    assert ann.post("/v1/blocks", {"user_id": dee.user_id}).status_code == 204
    ben_stream, cat_stream, dee_stream = EventStream(ben), EventStream(cat), EventStream(dee)
    try:
        post = ann.post(f"/v1/niches/{niche['id']}/posts", {"text": "live hello"}).json()
        entry = ben_stream.next("feed.entry")
        assert entry["id"] == post["id"] and entry["text"] == "live hello"
        assert entry["author"] == {"id": ann.user_id, "display_name": "Ann"}

        conv = ann.post("/v1/conversations", {"member_ids": [ben.user_id]}).json()
        sent = ann.post(f"/v1/conversations/{conv['id']}/messages",
                        {"client_message_id": "c-1", "text": "psst"}).json()
        new = ben_stream.next("message.new")
        assert new["id"] == sent["id"] and new["conversation_id"] == conv["id"]
        assert new["text"] == "psst" and new["seq"] == 1 and new["sender_id"] == ann.user_id

        ann_stream = EventStream(ann)
        try:
            assert ben.post(f"/v1/conversations/{conv['id']}/read", {"seq": 1}) \
                .status_code == 204
            read = ann_stream.next("message.read")
            assert read["user_id"] == ben.user_id and read["seq"] == 1
        finally:
            ann_stream.close()

        # cat shares nothing with anyone here, and ann blocks dee (a member of the niche):
        # neither stream carries ann's post or her messages.
        assert cat_stream.drain() == []
        assert dee_stream.drain(0) == []

        # Signing out ends the stream too (checked at every heartbeat).
        assert ben.delete("/v1/sessions/current").status_code == 204
        assert ben_stream.next("session.expired") == {}
    finally:
        for s in (ben_stream, cat_stream, dee_stream):
            s.close()


def attach_late(gateway: Gateway, uploader: Client, kind: str, carrier_id: str,
                parent_id: str = "") -> str:
    """A photo attached to a carrier whose creation the stream has already delivered (as
    happens when the gateway's attach lands after the creation's event was read)."""
    photo = uploaded(uploader)
    with contextlib.closing(channel(gateway.settings.grpc_addr("media"))) as ch:
        media = media_pb2_grpc.MediaServiceStub(ch)
        claim = str(uuid.uuid4())
        media.Claim(media_pb2.ClaimRequest(actor_id=uploader.user_id, claim_id=claim,
                                           media_ids=[photo]))
        media.Attach(media_pb2.AttachRequest(actor_id=uploader.user_id, claim_id=claim,
                                             carrier=media_pb2.Carrier(
                                                 kind=kind, id=carrier_id,
                                                 parent_id=parent_id)))
    return photo


def test_photos_attached_after_the_event_follow_to_those_who_may_see_them(
        gateway: Gateway) -> None:
    eva, fay, gus = (gateway.signup(n) for n in ("eva", "fay", "gus"))
    niche = eva.post("/v1/niches", {"name": "Late Photos", "kind": "friends"}).json()
    code = eva.post(f"/v1/niches/{niche['id']}/invites", {"max_uses": 2}).json()["code"]
    assert fay.post(f"/v1/invites/{code}/accept").status_code == 200
    assert gus.post(f"/v1/invites/{code}/accept").status_code == 200
    assert eva.post("/v1/blocks", {"user_id": gus.user_id}).status_code == 204
    fay_stream, gus_stream = EventStream(fay), EventStream(gus)
    try:
        post = eva.post(f"/v1/niches/{niche['id']}/posts", {"text": "the view"}).json()
        assert fay_stream.next("feed.entry")["media"] == []
        photo = attach_late(gateway, eva, "post", post["id"])
        updated = fay_stream.next("post.updated")
        assert (updated["id"], [m["id"] for m in updated["media"]]) == (post["id"], [photo])

        conv = eva.post("/v1/conversations", {"member_ids": [fay.user_id]}).json()
        sent = eva.post(f"/v1/conversations/{conv['id']}/messages",
                        {"client_message_id": "late-1", "text": "look"}).json()
        assert fay_stream.next("message.new")["media"] == []
        photo = attach_late(gateway, eva, "message", sent["id"], conv["id"])
        assert fay_stream.next("message.updated") == {
            "id": sent["id"], "conversation_id": conv["id"],
            "media": [m for m in fay.get(f"/v1/conversations/{conv['id']}/messages")
                      .json()["items"][0]["media"]]}
        assert gus_stream.drain() == []  # blocked by eva: neither the post nor its photos
    finally:
        fay_stream.close()
        gus_stream.close()


def test_stream_requires_a_token(gateway: Gateway) -> None:
    resp = gateway.client().get("/v1/stream")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthenticated"


def test_the_stream_server_answers_only_get_v1_stream_in_the_public_shape(
        gateway: Gateway, module_settings: Any) -> None:
    with served_stream(module_settings, gateway_config(), upstream="") as (url, _):
        anon = Client(url)
        assert_error(anon.post("/v1/stream"), 405, "method_not_allowed")
        assert_error(anon.get("/v1/niches"), 404, "not_found")  # no upstream: nothing else
        assert_error(anon.get("/v1/stream?ticket=not%20a%20ticket"), 400, "invalid_argument")
        assert anon.get("/healthz").json() == {"status": "ok"}
        assert anon.get("/readyz").json()["status"] == "ready"
    # And the Flask gateway no longer serves it: its threads are for ordinary requests.
    direct = Client(gateway.url, gateway.signup("direct").token)
    assert_error(direct.get("/v1/stream"), 404, "not_found")


@contextlib.contextmanager
def own_gateway(gateway: Gateway, **config: Any) -> Iterator[str]:
    """A second gateway app over the same stack, with its own config (and stream hub)."""
    with served_gateway(gateway.settings, **config) as url:
        yield url


def test_streams_are_capped_per_user_and_per_process(gateway: Gateway) -> None:
    # A handful of accounts cannot take every slot: 2 per user, 3 in the whole process.
    with own_gateway(gateway, streams_per_user=2, streams_per_process=3) as url:
        ann, ben, cat = (gateway.signup(n) for n in ("capann", "capben", "capcat"))
        for c in (ann, ben, cat):
            c.at(url)
        open_streams = [EventStream(ann), EventStream(ann)]
        try:
            refused = try_stream(ann)
            assert_error(refused, 429, "too_many_streams")
            assert int(refused.headers["Retry-After"]) >= 1
            open_streams.append(EventStream(ben))
            full = try_stream(cat)
            assert_error(full, 503, "unavailable")
            assert int(full.headers["Retry-After"]) >= 1
            assert cat.get("/v1/me").status_code == 200  # ordinary requests still served

            # A closed stream gives its slot back (noticed at the next heartbeat).
            open_streams.pop(0).close()
            again = eventually(lambda: try_stream(ann), lambda r: r.status_code != 429)
            assert again.status_code == 200
            again.close()
        finally:
            for s in open_streams:
                s.close()


def test_a_user_reconnecting_in_a_loop_is_slowed_down_and_nobody_else(gateway: Gateway) -> None:
    # Each open may cost a catch-up read of the log: a client reopening in a loop gets 429
    # once its budget (here 2 a minute) is spent, before it costs anything; others go on.
    with own_gateway(gateway, stream_opens_per_minute=2) as url:
        ann, ben = gateway.signup("loopann"), gateway.signup("loopben")
        for c in (ann, ben):
            c.at(url)
        for _ in range(2):
            EventStream(ann).close()
        refused = try_stream(ann)
        assert_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 30
        assert refused.json()["error"]["details"] == {"limit": "2 per minute"}
        other = EventStream(ben)  # another user's budget is their own
        other.close()



def test_a_busy_stream_ends_as_soon_as_its_session_does(gateway: Gateway) -> None:
    # A heartbeat far beyond the test: only the per-event session check can end the stream.
    with own_gateway(gateway, stream_heartbeat_s=60.0) as url:
        ann, ben = gateway.signup("busyann"), gateway.signup("busyben")
        niche_id = ann.post("/v1/niches", {"name": "Busy", "kind": "friends"}).json()["id"]
        invite = ann.post(f"/v1/niches/{niche_id}/invites", {"max_uses": 1}).json()["code"]
        assert ben.post(f"/v1/invites/{invite}/accept").status_code == 200
        conv = ann.post("/v1/conversations", {"member_ids": [ben.user_id]}).json()
        ben.at(url)
        stream = EventStream(ben)
        try:
            first = ann.post(f"/v1/conversations/{conv['id']}/messages",
                             {"client_message_id": "b-1", "text": "one"}).json()
            assert stream.next("message.new")["id"] == first["id"]
            assert ben.delete("/v1/sessions/current").status_code == 204
            ann.post(f"/v1/conversations/{conv['id']}/messages",
                     {"client_message_id": "b-2", "text": "after sign-out"})
            name, data = stream.events.get(timeout=10)
            assert (name, data) == ("session.expired", {})
            assert stream.drain(0.3) == []
        finally:
            stream.close()


def test_a_niche_joined_while_streaming_is_live_at_once(gateway: Gateway) -> None:
    # The stream server is another process than the gateway that took the join: it hears of
    # it from graph's events, not from the request.
    ann, ben = gateway.signup("joinann"), gateway.signup("joinben")
    first = ann.post("/v1/niches", {"name": "First", "kind": "friends"}).json()
    code = ann.post(f"/v1/niches/{first['id']}/invites", {"max_uses": 1}).json()["code"]
    assert ben.post(f"/v1/invites/{code}/accept").status_code == 200
    stream = EventStream(ben)
    try:
        ann.post(f"/v1/niches/{first['id']}/posts", {"text": "in the first"})
        assert stream.next("feed.entry")["text"] == "in the first"  # ben's niches now cached
        second = ann.post("/v1/niches", {"name": "Second", "kind": "friends"}).json()
        code = ann.post(f"/v1/niches/{second['id']}/invites", {"max_uses": 1}).json()["code"]
        assert ben.post(f"/v1/invites/{code}/accept").status_code == 200

        def post_and_see() -> dict[str, Any]:  # the join's event may be a moment behind
            ann.post(f"/v1/niches/{second['id']}/posts", {"text": "in the second"})
            return stream.next("feed.entry", timeout=1.0)

        # Well within the 30 s that the cached niches would otherwise be kept.
        assert eventually(post_and_see, timeout=10.0)["text"] == "in the second"
    finally:
        stream.close()
