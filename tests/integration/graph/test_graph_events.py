"""What the graph publishes on graph.events.v1, and how it reacts to identity.events.v1."""

from __future__ import annotations

import hashlib
import time
import uuid

import grpc
from confluent_kafka import Producer

from kith.common.codec import default_codec
from kith.common.kafka import event_headers, producer_config
from kith.protos import graph_pb2 as pb
from tests.integration.graph.graph_helpers import (
    Graph,
    Published,
    new_user,
    read_topic,
)
from tests.support.rpc import refused
from tests.support.waiting import eventually


def test_commands_publish_their_events_in_stream_order(graph: Graph) -> None:
    owner, alice, bob = new_user(), new_user(), new_user()
    niche = graph.stub.CreateNiche(pb.CreateNicheRequest(actor_id=owner, name="Family",
                                                         kind="family"))
    code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=owner, niche_id=niche.id,
                                                          max_uses=2)).code
    for user in (alice, bob):
        graph.stub.AcceptInvite(pb.AcceptInviteRequest(actor_id=user, code=code))
    graph.stub.ChangeRole(pb.ChangeRoleRequest(actor_id=owner, niche_id=niche.id, user_id=alice,
                                               role=pb.ADMIN))
    graph.stub.RemoveMember(pb.RemoveMemberRequest(actor_id=alice, niche_id=niche.id,
                                                   user_id=bob))
    graph.stub.Block(pb.BlockRequest(actor_id=bob, user_id=alice))
    graph.stub.Unblock(pb.BlockRequest(actor_id=bob, user_id=alice))

    seen = read_topic(graph.settings, "graph", lambda s: len(s) >= 9)
    in_niche = [p for p in seen if p.key == niche.id]
    assert [(p.type.removeprefix("kith.graph."), p.version) for p in in_niche] == [
        ("NicheCreated", 1), ("MemberJoined", 2), ("InviteCreated", 3), ("MemberJoined", 4),
        ("MemberJoined", 5), ("MemberRoleChanged", 6), ("MemberLeft", 7)]
    created, owner_joined, invited, alice_joined = (p.data for p in in_niche[:4])
    assert (created["owner_id"], created["member_cap"]) == (owner, 150)
    assert (owner_joined["user_id"], owner_joined["role"]) == (owner, "owner")
    assert invited["code_sha256"] == hashlib.sha256(code.encode()).hexdigest()
    assert alice_joined["invite_id"] == invited["invite_id"]
    assert in_niche[-1].data | {"left_at_ms": 0} == {
        "niche_id": niche.id, "user_id": bob, "reason": "removed", "removed_by": alice,
        "left_at_ms": 0}
    assert all(code not in str(p.data) for p in seen)  # only the hash is ever recorded
    blocks = [(p.type, p.data["blocker_id"], p.data["blocked_id"]) for p in seen if p.key == bob]
    assert blocks == [("kith.graph.UserBlocked", bob, alice),
                      ("kith.graph.UserUnblocked", bob, alice)]


def publish_account_deleted(graph: Graph, user_id: str, version: int) -> None:
    """An AccountDeleted on the identity topic, in the wire format identity's relay uses."""
    event_type = "kith.identity.AccountDeleted"
    payload = default_codec().encode(event_type, {"user_id": user_id,
                                                  "deleted_at_ms": int(time.time() * 1000)})
    producer = Producer(producer_config(graph.settings.require_kafka()))
    producer.produce(graph.settings.topic("identity"), key=user_id, value=payload,
                     headers=event_headers(event_type, uuid.uuid4(), version, version, {}))
    assert producer.flush(10) == 0


def test_a_deleted_account_leaves_every_niche_and_hands_ownership_on(graph: Graph) -> None:
    doomed, early_member, later_admin, other_owner, blocked = (new_user() for _ in range(5))

    def niche(owner: str, *joiners: str) -> str:
        niche_id = graph.stub.CreateNiche(pb.CreateNicheRequest(actor_id=owner, name="N",
                                                                kind="custom")).id
        code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=owner, niche_id=niche_id,
                                                              max_uses=5)).code
        for user in joiners:
            graph.stub.AcceptInvite(pb.AcceptInviteRequest(actor_id=user, code=code))
        return niche_id

    owned = niche(doomed, early_member, later_admin)
    graph.stub.ChangeRole(pb.ChangeRoleRequest(actor_id=doomed, niche_id=owned,
                                               user_id=later_admin, role=pb.ADMIN))
    joined = niche(other_owner, doomed)
    alone = niche(doomed)
    graph.stub.Block(pb.BlockRequest(actor_id=doomed, user_id=blocked))

    publish_account_deleted(graph, doomed, version=1)
    eventually(lambda: not graph.stub.ListNiches(pb.ListNichesRequest(actor_id=doomed)).items
               and not graph.stub.ListBlocks(pb.ListBlocksRequest(actor_id=doomed)).user_ids)

    members = graph.stub.ListMembers(pb.ListMembersRequest(actor_id=later_admin, niche_id=owned))
    assert {m.user_id: m.role for m in members.items} == {
        later_admin: pb.OWNER, early_member: pb.MEMBER}  # the admin, though the member is older
    members = graph.stub.ListMembers(pb.ListMembersRequest(actor_id=other_owner, niche_id=joined))
    assert [m.user_id for m in members.items] == [other_owner]

    def done(seen: list[Published]) -> bool:  # each partition is read at its own pace
        gone = [p for p in seen if p.type == "kith.graph.MemberLeft"
                and p.data["reason"] == "account_deleted"]
        return len(gone) == 3 and any(p.type == "kith.graph.UserUnblocked" for p in seen)

    seen = read_topic(graph.settings, "graph", done)
    left = {p.key: p.data["reason"] for p in seen
            if p.type == "kith.graph.MemberLeft" and p.data["user_id"] == doomed}
    assert left == {owned: "account_deleted", joined: "account_deleted", alone: "account_deleted"}
    assert [p.key for p in seen if p.type == "kith.graph.NicheArchived"] == [alone]

    # The erased account changes nothing any more, e.g. through a session still cached upstream.
    code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=other_owner,
                                                          niche_id=joined)).code
    for command in (
        lambda: graph.stub.AcceptInvite(pb.AcceptInviteRequest(actor_id=doomed, code=code)),
        lambda: graph.stub.CreateNiche(pb.CreateNicheRequest(actor_id=doomed, name="N",
                                                             kind="custom")),
        lambda: graph.stub.Block(pb.BlockRequest(actor_id=doomed, user_id=blocked)),
    ):
        assert refused(command)[:2] == (grpc.StatusCode.UNAUTHENTICATED, "account_deleted")

    # A second deletion event for the same user (a replay) changes nothing.
    with graph.running.context.pool.connection() as conn:
        before = conn.execute("SELECT count(*) FROM events").fetchone()
    runner = graph.running.runners[0]
    applied = runner.applied
    publish_account_deleted(graph, doomed, version=2)
    eventually(lambda: runner.applied > applied)
    with graph.running.context.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == before
