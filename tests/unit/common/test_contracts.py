"""What consumers rely on in other services' events."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from kith.common.codec import default_schemas_dir
from kith.common.contracts import ACCOUNT_DELETED, CONSUMED, AccountDeletion, account_deletions
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


def newest_schema_fields(event_type: str) -> set[str]:
    _, service, name = event_type.split(".")
    versions = sorted(default_schemas_dir().joinpath(service).glob(f"{name}.v*.avsc"),
                      key=lambda p: int(p.name.rsplit(".v", 1)[1].split(".")[0]))
    assert versions, f"{event_type} has no schema"
    return {f["name"] for f in json.loads(versions[-1].read_text())["fields"]}


def test_every_field_a_consumer_relies_on_is_still_in_the_producers_newest_schema() -> None:
    for event_type, relied_on in CONSUMED.items():
        missing = set(relied_on) - newest_schema_fields(event_type)
        assert not missing, f"{event_type} no longer has {sorted(missing)}"


def test_consumers_name_other_services_events_only_through_the_contracts() -> None:
    services = Path(__file__).resolve().parents[3] / "services"
    declared = re.compile(r'"kith\.(identity|graph|post|messaging|media)\.[A-Z]\w+"')
    for source in services.glob("*/*.py"):
        service = source.parent.name
        if service in ("cli", "protos", "common"):
            continue
        for match in declared.finditer(source.read_text()):
            assert match.group(1) == service, (
                f"{source.relative_to(services)} names {match.group(0)}: declare it in"
                " kith.common.contracts and import it from there")
