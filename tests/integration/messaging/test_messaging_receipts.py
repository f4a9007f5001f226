"""Receipts, unread counts and the inbox projection (fed from messaging.events.v1)."""

from __future__ import annotations

import uuid

import grpc
import psycopg

from kith.cli.replay import rebuild_projection
from kith.common.codec import default_codec
from kith.messaging.projections import InboxProjection
from kith.protos import messaging_pb2 as pb
from tests.integration.messaging.messaging_helpers import (
    World,
    topic_events,
    users,
)
from tests.support.rpc import refused
from tests.support.waiting import eventually


def unread(world: World, user: str) -> dict[str, int]:
    return {item.id: item.unread_count for item in world.inbox(user).items}


def test_receipts_and_unread_counts(world: World) -> None:
    alice, bob, carol = users(3)
    world.niche_with(alice, bob, carol)
    conversation = world.conversation(alice, bob, carol, title="Book club")
    cid = conversation.id
    for i in range(3):
        world.send(alice, cid, f"chapter {i}")
    world.send(bob, cid, "on it")

    expected = {alice: 1, bob: 0, carol: 4}  # sending implies reading up to one's own message
    for user, count in expected.items():
        eventually(lambda u=user: unread(world, u), lambda got, c=count: got == {cid: c})

    def mark(user: str, seq: int, rpc: str = "MarkRead") -> None:
        getattr(world.messaging, rpc)(pb.MarkRequest(actor_id=user, conversation_id=cid,
                                                     seq=seq))

    mark(carol, 2, "MarkDelivered")
    mark(carol, 3)
    mark(carol, 1)  # marks never move back
    mark(carol, 2, "MarkDelivered")
    state = world.messaging.GetConversation(pb.GetConversationRequest(actor_id=carol,
                                                                      conversation_id=cid))
    assert (state.last_seq, state.read_seq, state.delivered_seq) == (4, 3, 3)
    status, _, details = refused(lambda: mark(carol, 5))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and "seq" in details
    eventually(lambda: unread(world, carol), lambda got: got == {cid: 1})

    item = world.inbox(carol).items[0]
    assert item.title == "Book club" and list(item.members) == [alice, bob, carol]
    assert (item.last_message.seq, item.last_message.sender_id, item.last_message.text) == (
        4, bob, "on it")

    # The gateway's live stream reads these events: they name who is to be told.
    events = topic_events(world.settings, lambda seen: sum(
        t == "kith.messaging.MessagesRead" for t, _ in seen) >= 1)
    read = next(d for t, d in events if t == "kith.messaging.MessagesRead")
    assert (read["user_id"], read["seq"], read["member_ids"]) == (carol, 3, [alice, bob, carol])
    delivered = [d["seq"] for t, d in events if t == "kith.messaging.MessagesDelivered"]
    assert delivered == [2], "a mark that moves nothing records nothing"


def test_the_inbox_orders_pages_and_forgets_what_was_left(world: World) -> None:
    alice, bob, carol = users(3)
    world.niche_with(alice, bob, carol)
    first = world.conversation(alice, bob).id
    second = world.conversation(alice, carol).id
    third = world.conversation(alice, bob, carol).id
    world.send(carol, second, "newest")

    ids = eventually(lambda: [i.id for i in world.inbox(alice).items],
                     lambda got: len(got) == 3 and got[0] == second)
    assert set(ids) == {first, second, third}
    page = world.inbox(alice, limit=2)
    assert len(page.items) == 2 and page.next_cursor
    rest = world.inbox(alice, limit=2, cursor=page.next_cursor)
    assert [i.id for i in [*page.items, *rest.items]] == ids and rest.next_cursor == ""
    assert not page.items[1].HasField("last_message")

    world.messaging.LeaveConversation(pb.LeaveConversationRequest(actor_id=bob,
                                                                  conversation_id=third))
    eventually(lambda: {i.id for i in world.inbox(bob).items}, lambda got: got == {first})
    eventually(lambda: {i.id: list(i.members) for i in world.inbox(carol).items},
               lambda got: got.get(third) == [alice, carol])


def test_the_inbox_rebuilds_from_offset_zero_to_the_same_rows(world: World) -> None:
    alice, bob, carol = users(3)
    world.niche_with(alice, bob, carol)
    group = world.conversation(alice, bob, carol, title="Rebuilt")
    direct = world.conversation(alice, bob)
    for i in range(3):
        world.send(bob, group.id, f"g{i}")
    world.send(alice, direct.id, "d")
    world.messaging.MarkRead(pb.MarkRequest(actor_id=carol, conversation_id=group.id, seq=2))
    world.messaging.LeaveConversation(pb.LeaveConversationRequest(actor_id=alice,
                                                                  conversation_id=direct.id))

    def snapshot() -> list[tuple]:
        with psycopg.connect(world.messaging_dsn) as conn:
            return conn.execute("SELECT * FROM inbox ORDER BY user_id, conversation_id").fetchall()

    before = eventually(snapshot, lambda rows: len(rows) == 4 and any(
        r[1] == uuid.UUID(group.id) and r[5] == 2 for r in rows))
    result = rebuild_projection(InboxProjection(world.settings.topic("messaging")),
                                world.messaging_dsn, world.settings.require_kafka(),
                                default_codec())
    assert result.applied == 8  # 2 created, 4 sent, 1 read, 1 left
    assert snapshot() == before
