"""The command runner's retry policy and the one metadata every recorded event carries."""

from __future__ import annotations

import random

from kith.common.commands import EventMetadata, RetryPolicy, event_metadata
from kith.common.logs import command_id, request_id


def test_the_back_off_doubles_up_to_its_ceiling_and_is_fully_jittered() -> None:
    policy = RetryPolicy(attempts=10, base_delay_s=0.01, max_delay_s=0.05)
    rng = random.Random(7)

    delays = {failures: [policy.delay_s(failures, rng) for _ in range(500)]
              for failures in (1, 2, 3, 4, 9)}

    assert all(0 <= d <= 0.01 for d in delays[1])
    assert all(0 <= d <= 0.02 for d in delays[2])
    assert all(0 <= d <= 0.04 for d in delays[3])
    assert all(0 <= d <= 0.05 for d in delays[4] + delays[9])  # capped
    assert max(delays[9]) > 0.04 and min(delays[9]) < 0.01  # spread over the whole range


def test_a_users_command_names_actor_request_and_command_id() -> None:
    rid, cid = request_id.set("req-1"), command_id.set("3f0c9d1e-5b7a-4c2e-9f10-1a2b3c4d5e6f")
    try:
        meta = event_metadata("u-1", command="create_niche")
    finally:
        request_id.reset(rid)
        command_id.reset(cid)

    assert meta == {"actor_id": "u-1", "command": "create_niche", "correlation_id": "req-1",
                    "command_id": "3f0c9d1e-5b7a-4c2e-9f10-1a2b3c4d5e6f"}


def test_work_nobody_asked_for_is_the_systems_and_leaves_unknowns_out() -> None:
    meta = event_metadata(None, causation_id="evt-9", reason="account_deleted")

    assert meta == {"actor_id": "system", "causation_id": "evt-9", "reason": "account_deleted"}
    assert None not in meta.values() and "" not in meta.values()


def test_metadata_stored_under_every_earlier_spelling_reads_back_the_same() -> None:
    messaging_before = {"actor_id": "u-1", "request_id": "req-1"}
    post_before = {"actor_id": "u-1", "correlation_id": ""}
    messaging_without_request = {"actor_id": "u-1", "request_id": None}
    graph_system = {"actor_id": "system", "correlation_id": "req-2"}
    media_before: dict[str, str] = {}

    assert EventMetadata.parse(messaging_before) == EventMetadata("u-1", "req-1", None, None)
    assert EventMetadata.parse(post_before) == EventMetadata("u-1", None, None, None)
    assert EventMetadata.parse(messaging_without_request) == EventMetadata("u-1", None, None,
                                                                           None)
    assert EventMetadata.parse(graph_system) == EventMetadata(None, "req-2", None, None)
    assert EventMetadata.parse(media_before) == EventMetadata(None, None, None, None)
    assert EventMetadata.parse(event_metadata("u-3")) == EventMetadata("u-3", None, None, None)
