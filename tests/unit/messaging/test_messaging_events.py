"""Every messaging event round-trips through its Avro schema, field for field."""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest

from kith.common.codec import default_codec
from kith.common.events import to_new_event
from kith.messaging.events import (
    EVENT_TYPES,
    ConversationCreated,
    ConversationEvent,
    MemberLeftConversation,
    MessagesDelivered,
    MessageSent,
    MessagesRead,
    from_data,
)

SAMPLES: list[ConversationEvent] = [
    ConversationCreated("c", "a", ["a", "b"], "enc:v1:xyz", 1),
    ConversationCreated("c", "a", ["a", "b"], None, 1),
    MemberLeftConversation("c", "b", ["a"], 2),
    MemberLeftConversation("c", "b", ["a"], 2, "account_deleted"),
    MessageSent("c", "m", 1, "a", "client-1", "enc:v1:abc", ["a", "b"], 3),
    MessagesRead("c", "b", 1, ["a", "b"], 4),
    MessagesDelivered("c", "b", 1, ["a", "b"], 5),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip(event: ConversationEvent) -> None:
    new = to_new_event(event)
    event_type, data = default_codec().decode(default_codec().encode(new.type, new.data))
    assert event_type == event.TYPE
    assert from_data(event_type, data) == event


def test_every_event_has_a_schema_with_the_same_fields() -> None:
    registry = default_codec().registry
    for name, cls in EVENT_TYPES.items():
        schema_fields = [f["name"] for f in registry.latest(name).parsed["fields"]]
        assert schema_fields == [f.name for f in fields(cls)], name
    assert {n for n in registry.names() if n.startswith("kith.messaging.")} == set(EVENT_TYPES)
    assert asdict(SAMPLES[0])["member_ids"] == ["a", "b"]


def test_a_v1_leave_reads_as_a_plain_leave() -> None:
    codec = default_codec()
    payload = codec.encode(MemberLeftConversation.TYPE, {
        "conversation_id": "c", "user_id": "b", "member_ids": ["a"], "left_at_ms": 2}, version=1)
    event_type, data = codec.decode(payload)
    assert from_data(event_type, data) == MemberLeftConversation("c", "b", ["a"], 2, "left")
