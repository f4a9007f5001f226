"""``GET /v1/stream``: live feed entries and message events reach exactly the right people."""

from __future__ import annotations

from tests.integration.gateway.harness import EventStream, Gateway


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


def test_stream_requires_a_token(gateway: Gateway) -> None:
    resp = gateway.client().get("/v1/stream")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthenticated"
