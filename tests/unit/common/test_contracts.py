"""What consumers rely on in other services' events."""

from __future__ import annotations

import uuid
from typing import Any

from kith.common.contracts import ACCOUNT_DELETED, AccountDeletion, account_deletions
from kith.common.kafka import EventEnvelope
from kith.common.projection import Event


def event(event_type: str, data: dict[str, Any], topic: str = "identity.events.v1") -> Event:
    envelope = EventEnvelope(topic, 0, 0, uuid.uuid4(), uuid.uuid4(), event_type,
                             1, 1, b"", {})
    return Event(envelope, event_type, data)


def test_account_deletions_are_picked_out_and_malformed_ones_passed_over() -> None:
    user = uuid.uuid4()
    events = [
        event("kith.identity.ProfileChanged", {"user_id": str(user)}),
        event(ACCOUNT_DELETED, {"user_id": str(user).upper(), "deleted_at_ms": 5}),
        event(ACCOUNT_DELETED, {"user_id": "not-a-uuid", "deleted_at_ms": 5}),
        event(ACCOUNT_DELETED, {"deleted_at_ms": 5}),
    ]

    assert account_deletions(events) == [AccountDeletion(str(user), 5)]


def test_an_account_deletion_counts_only_from_identitys_own_topic() -> None:
    """Any service could write AccountDeleted into its own topic; only identity's is believed."""
    victim = str(uuid.uuid4())
    forged = [event(ACCOUNT_DELETED, {"user_id": victim, "deleted_at_ms": 5}, topic)
              for topic in ("post.events.v1", "t1.graph.events.v1", "identity.events.v1.evil")]
    assert account_deletions(forged) == []
    real = event(ACCOUNT_DELETED, {"user_id": victim, "deleted_at_ms": 5}, "t1.identity.events.v1")
    assert account_deletions([*forged, real]) == [AccountDeletion(victim, 5)]
