"""Who may talk to whom: shared niches, blocks, the size cap, membership and validation."""

from __future__ import annotations

import dataclasses
import uuid

import grpc

from kith.messaging.entrypoint import SPEC as MESSAGING
from kith.protos import messaging_pb2 as pb
from kith.protos import messaging_pb2_grpc
from kith_dev.infra.processes import free_port
from tests.integration.messaging.messaging_helpers import MAX_MEMBERS, World, users
from tests.support.rpc import channel, refused

NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED


def test_conversations_start_only_among_people_sharing_a_niche(world: World) -> None:
    alice, bob, carol, stranger = users(4)
    world.niche_with(alice, bob)
    world.niche_with(carol, alice)
    created = world.conversation(alice, bob, carol, bob, title="Trip")
    assert list(created.members) == [alice, bob, carol] and created.title == "Trip"
    got = world.messaging.GetConversation(pb.GetConversationRequest(
        actor_id=carol, conversation_id=created.id))
    assert got.created_by == alice and list(got.members) == [alice, bob, carol]

    status, code, _ = refused(lambda: world.conversation(alice, bob, stranger))
    assert (status, code) == (DENIED, "no_shared_niche")
    status, code, _ = refused(lambda: world.conversation(bob, carol))  # they share none
    assert (status, code) == (DENIED, "no_shared_niche")


def test_the_size_cap_and_input_validation(world: World) -> None:
    crowd = users(MAX_MEMBERS + 1)
    world.niche_with(*crowd)
    assert len(world.conversation(*crowd[:MAX_MEMBERS]).members) == MAX_MEMBERS
    status, code, _ = refused(lambda: world.conversation(*crowd))
    assert (status, code) == (grpc.StatusCode.FAILED_PRECONDITION, "conversation_too_large")

    status, _, details = refused(lambda: world.messaging.CreateConversation(
        pb.CreateConversationRequest(actor_id="nobody", member_ids=["x"], title="t" * 101)))
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert set(details) == {"actor_id", "member_ids[0]", "title"}
    status, _, details = refused(lambda: world.conversation(crowd[0]))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and "member_ids" in details

    conversation = world.conversation(crowd[0], crowd[1])
    status, _, details = refused(lambda: world.send(crowd[0], conversation.id, "x" * 5001,
                                                    client_message_id="c" * 65))
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert set(details) == {"text", "client_message_id"}
    status, _, details = refused(lambda: world.messaging.ListMessages(pb.ListMessagesRequest(
        actor_id=crowd[0], conversation_id=conversation.id, after_seq=-1, limit=101)))
    assert set(details) == {"after_seq", "limit"}
    status, _, details = refused(lambda: world.messaging.MarkRead(pb.MarkRequest(
        actor_id=crowd[0], conversation_id=conversation.id, seq=0)))
    assert set(details) == {"seq"}
    status, _, details = refused(lambda: world.inbox(crowd[0], cursor="not-a-cursor"))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and set(details) == {"cursor"}


def test_non_members_and_leavers_get_not_found(world: World) -> None:
    alice, bob, carol, outsider = users(4)
    world.niche_with(alice, bob, carol, outsider)
    conversation = world.conversation(alice, bob, carol)
    cid = conversation.id
    world.send(alice, cid, "hello")

    def attempts(user: str) -> list:
        return [
            lambda: world.send(user, cid, "let me in"),
            lambda: world.messages(user, cid),
            lambda: world.messaging.GetConversation(pb.GetConversationRequest(
                actor_id=user, conversation_id=cid)),
            lambda: world.messaging.MarkRead(pb.MarkRequest(actor_id=user, conversation_id=cid,
                                                            seq=1)),
            lambda: world.messaging.MarkDelivered(pb.MarkRequest(
                actor_id=user, conversation_id=cid, seq=1)),
            lambda: world.messaging.LeaveConversation(pb.LeaveConversationRequest(
                actor_id=user, conversation_id=cid)),
        ]

    for attempt in attempts(outsider):
        assert refused(attempt)[0] == NOT_FOUND
    assert refused(lambda: world.messages(alice, str(uuid.uuid4())))[0] == NOT_FOUND

    world.messaging.LeaveConversation(pb.LeaveConversationRequest(actor_id=carol,
                                                                  conversation_id=cid))
    for attempt in attempts(carol):
        assert refused(attempt)[0] == NOT_FOUND
    left = world.messaging.GetConversation(pb.GetConversationRequest(actor_id=alice,
                                                                     conversation_id=cid))
    assert list(left.members) == [alice, bob]
    assert world.send(bob, cid, "still here").seq == 2


def test_blocks(world: World) -> None:
    alice, bob, carol = users(3)
    world.niche_with(alice, bob, carol)
    direct = world.conversation(alice, bob)
    group = world.conversation(alice, bob, carol)
    world.send(alice, direct.id, "before the block")
    world.send(carol, group.id, "group news")

    world.block(bob, alice)
    status, code, _ = refused(lambda: world.conversation(alice, bob))
    assert (status, code) == (DENIED, "not_allowed")  # never "blocked"
    status, code, _ = refused(lambda: world.conversation(bob, alice))
    assert (status, code) == (DENIED, "not_allowed")
    for sender in (alice, bob):  # a block stops a 1:1 conversation both ways
        status, code, _ = refused(lambda s=sender: world.send(s, direct.id, "hi"))
        assert (status, code) == (DENIED, "not_allowed")
    # ... and a group the pair shares, both ways; the others carry on.
    for sender in (alice, bob):
        status, code, _ = refused(lambda s=sender: world.send(s, group.id, "hi all"))
        assert (status, code) == (DENIED, "not_allowed")
    assert world.send(carol, group.id, "still here").seq == 2
    # Nobody can put the pair into one conversation, not even a third person.
    status, code, _ = refused(lambda: world.conversation(carol, alice, bob))
    assert (status, code) == (DENIED, "not_allowed")
    # Reading what was said before stays possible.
    assert [m.text for m in world.messages(alice, direct.id)] == ["before the block"]
    assert [m.text for m in world.messages(bob, group.id)] == ["group news", "still here"]


def test_without_the_graph_creation_is_unavailable_not_an_internal_error(stack) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    stack.settings = dataclasses.replace(stack.settings,
                                         grpc_addrs={**stack.settings.grpc_addrs, "graph": nowhere})
    stack.start(MESSAGING)
    alice, bob = users(2)
    with channel(stack.settings.grpc_addr("messaging")) as chan:
        stub = messaging_pb2_grpc.MessagingServiceStub(chan)
        status, code, _ = refused(lambda: stub.CreateConversation(pb.CreateConversationRequest(
            actor_id=alice, member_ids=[bob])))
    assert (status, code) == (grpc.StatusCode.UNAVAILABLE, "unavailable")
