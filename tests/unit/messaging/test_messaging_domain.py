"""The conversation aggregate: numbering, receipts, membership and the value rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kith.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kith.messaging.domain import (
    Conversation,
    check_accounts_exist,
    check_client_message_id,
    check_not_blocked,
    check_shares_niche,
    check_text,
    check_title,
    start_conversation,
)
from kith.messaging.events import ACCOUNT_DELETED, LEFT, ConversationEvent

ALICE, BOB, CAROL = "a", "b", "c"


def started(*members: str, max_members: int = 50) -> tuple[Conversation, list[ConversationEvent]]:
    created = start_conversation("conv", members[0], list(members[1:]), None, max_members, 1)
    return Conversation.replay([created]), [created]


def record(conversation: Conversation, log: list[ConversationEvent],
           event: ConversationEvent | None) -> None:
    if event is not None:
        conversation.apply(event)
        conversation.version += 1
        log.append(event)


def test_creator_comes_first_and_duplicates_collapse() -> None:
    created = start_conversation("conv", ALICE, [BOB, ALICE, BOB, CAROL], None, 50, 7)
    assert created.member_ids == [ALICE, BOB, CAROL]
    assert created.created_by == ALICE


def test_size_bounds() -> None:
    with pytest.raises(InvalidArgument) as alone:
        start_conversation("conv", ALICE, [ALICE], None, 50, 1)
    assert "member_ids" in alone.value.details
    with pytest.raises(FailedPrecondition) as too_many:
        start_conversation("conv", ALICE, [f"u{i}" for i in range(3)], None, 3, 1)
    assert too_many.value.code == "conversation_too_large"
    assert start_conversation("conv", ALICE, ["u1", "u2"], None, 3, 1).member_ids[-1] == "u2"


def test_messages_are_numbered_from_one_and_sending_reads() -> None:
    conversation, log = started(ALICE, BOB)
    for i in range(3):
        sender = (ALICE, BOB)[i % 2]
        record(conversation, log, conversation.send(sender, f"m{i}", f"c{i}", "sealed", 10 + i))
    assert [e.seq for e in log[1:]] == [1, 2, 3]
    assert log[1].member_ids == [ALICE, BOB]
    assert conversation.last_seq == 3
    assert conversation.read_seq == {ALICE: 3, BOB: 2}
    assert conversation.unread_count(BOB) == 1


def test_marks_only_move_forward_and_stay_within_the_conversation() -> None:
    conversation, log = started(ALICE, BOB)
    for i in range(4):
        record(conversation, log, conversation.send(ALICE, f"m{i}", f"c{i}", "sealed", i))
    record(conversation, log, conversation.mark_delivered(BOB, 3, 5))
    assert conversation.delivered_seq[BOB] == 3
    assert conversation.mark_delivered(BOB, 2, 6) is None
    record(conversation, log, conversation.mark_read(BOB, 2, 7))
    assert conversation.read_seq[BOB] == 2 and conversation.unread_count(BOB) == 2
    assert conversation.mark_read(BOB, 1, 8) is None
    assert conversation.mark_delivered(BOB, 3, 8) is None
    record(conversation, log, conversation.mark_read(BOB, 4, 9))
    assert conversation.delivered_seq[BOB] == 4, "reading implies delivery"
    for bad in (0, 5):
        with pytest.raises(InvalidArgument):
            conversation.mark_read(BOB, bad, 10)


def test_non_members_and_leavers_see_nothing() -> None:
    conversation, log = started(ALICE, BOB, CAROL)
    with pytest.raises(NotFound):
        conversation.send("mallory", "m", "c", "sealed", 1)
    left = conversation.leave(CAROL, 2)
    assert left.member_ids == [ALICE, BOB]
    record(conversation, log, left)
    for attempt in (lambda: conversation.send(CAROL, "m", "c", "s", 3),
                    lambda: conversation.leave(CAROL, 3)):
        with pytest.raises(NotFound):
            attempt()


def test_a_deleted_account_is_made_to_leave_with_its_reason() -> None:
    conversation, log = started(ALICE, BOB, CAROL)
    assert conversation.leave(CAROL, 2).reason == LEFT
    forced = conversation.remove_deleted_account(BOB, 3)
    assert (forced.user_id, forced.member_ids, forced.reason) == (BOB, [ALICE, CAROL],
                                                                  ACCOUNT_DELETED)
    record(conversation, log, forced)
    assert conversation.members == [ALICE, CAROL]
    assert Conversation.replay(log).members == [ALICE, CAROL]
    with pytest.raises(NotFound):
        conversation.remove_deleted_account(BOB, 4)  # the erasure skips non-members


def test_deleted_accounts_cannot_be_added_nor_start_conversations() -> None:
    check_accounts_exist(ALICE, set())
    with pytest.raises(NotFound) as invited:
        check_accounts_exist(ALICE, {BOB})
    assert invited.value.details == {"member_ids": "this account was deleted"}
    with pytest.raises(NotFound) as creator:
        check_accounts_exist(ALICE, {ALICE})
    assert creator.value.details == {"actor_id": "this account was deleted"}


def test_the_direct_peer_exists_only_between_two() -> None:
    group, log = started(ALICE, BOB, CAROL)
    assert group.direct_peer(ALICE) is None
    record(group, log, group.leave(CAROL, 2))
    assert group.direct_peer(ALICE) == BOB and group.direct_peer(BOB) == ALICE


def test_graph_rules() -> None:
    check_shares_niche([BOB], {BOB, CAROL})
    with pytest.raises(PermissionDenied) as no_niche:
        check_shares_niche([BOB, CAROL], {BOB})
    assert no_niche.value.code == "no_shared_niche"
    check_not_blocked(set())
    with pytest.raises(PermissionDenied) as blocked:
        check_not_blocked({BOB})
    assert blocked.value.code == "not_allowed"  # a refusal never names the block


@pytest.mark.parametrize(("rule", "value", "field"), [
    (check_text, "", "text"), (check_text, "   ", "text"), (check_text, "x" * 5001, "text"),
    (check_title, "x" * 101, "title"),
    (check_client_message_id, "", "client_message_id"),
    (check_client_message_id, "x" * 65, "client_message_id"),
])
def test_value_rules_name_the_field(rule, value: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as bad:
        rule(value)
    assert field in bad.value.details


def test_only_a_message_with_photos_may_have_no_text() -> None:
    check_text("", with_photos=True)
    with pytest.raises(InvalidArgument):
        check_text("  ", with_photos=True)
    with pytest.raises(InvalidArgument):
        check_text("")


def test_value_rules_accept_the_bounds() -> None:
    check_text("x" * 5000)
    check_title("x" * 100)
    check_title("")
    check_client_message_id("x" * 64)


ops = st.lists(st.tuples(st.sampled_from(["send", "read", "deliver", "leave"]),
                         st.sampled_from([ALICE, BOB, CAROL]), st.integers(1, 30)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_replay_agrees_and_unread_counts_others_messages(script) -> None:
    """Whatever the commands, the replayed state equals the live one, seqs are 1..n, and the
    unread count is exactly the others' messages after a member's read mark."""
    conversation, log = started(ALICE, BOB, CAROL)
    senders: list[str] = []
    for op, user, seq in script:
        try:
            if op == "send":
                event = conversation.send(user, f"m{len(senders)}", "c", "s", 1)
                senders.append(user)
            elif op == "read":
                event = conversation.mark_read(user, seq, 1)
            elif op == "deliver":
                event = conversation.mark_delivered(user, seq, 1)
            else:
                event = conversation.leave(user, 1)
        except (NotFound, InvalidArgument):
            continue
        record(conversation, log, event)
    assert conversation == Conversation.replay(log)
    assert [e.seq for e in log if hasattr(e, "message_id")] == list(range(1, len(senders) + 1))
    for member in conversation.members:
        mark = conversation.read_seq.get(member, 0)
        others_after = sum(1 for i, s in enumerate(senders, 1) if i > mark and s != member)
        assert conversation.unread_count(member) == others_after
        assert conversation.delivered_seq.get(member, 0) >= mark
