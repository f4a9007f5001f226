"""Removals, leaving, ownership hand-over, archiving and blocks through the real gRPC server."""

from __future__ import annotations

import grpc

from kith.protos import graph_pb2 as pb
from tests.integration.graph.graph_helpers import Graph, new_user
from tests.support.rpc import refused


def staffed_niche(graph: Graph) -> tuple[str, str, str, str, str]:
    """A niche with an owner, an admin and two members: ``(niche, owner, admin, m1, m2)``."""
    owner, admin, m1, m2 = new_user(), new_user(), new_user(), new_user()
    niche = graph.stub.CreateNiche(pb.CreateNicheRequest(actor_id=owner, name="Team",
                                                         kind="professional"))
    code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=owner, niche_id=niche.id,
                                                          max_uses=3)).code
    for user in (admin, m1, m2):
        graph.stub.AcceptInvite(pb.AcceptInviteRequest(actor_id=user, code=code))
    set_role(graph, owner, niche.id, admin, pb.ADMIN)
    return niche.id, owner, admin, m1, m2


def set_role(graph: Graph, actor: str, niche: str, user: str, role: int) -> None:
    graph.stub.ChangeRole(pb.ChangeRoleRequest(actor_id=actor, niche_id=niche, user_id=user,
                                               role=role))


def remove(graph: Graph, actor: str, niche: str, user: str) -> None:
    graph.stub.RemoveMember(pb.RemoveMemberRequest(actor_id=actor, niche_id=niche, user_id=user))


def roles(graph: Graph, actor: str, niche: str) -> dict[str, int]:
    items = graph.stub.ListMembers(pb.ListMembersRequest(actor_id=actor, niche_id=niche)).items
    return {m.user_id: m.role for m in items}


def test_who_may_remove_whom(graph: Graph) -> None:
    niche, owner, admin, m1, m2 = staffed_niche(graph)
    admin2 = new_user()
    code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=admin, niche_id=niche)).code
    graph.stub.AcceptInvite(pb.AcceptInviteRequest(actor_id=admin2, code=code))
    set_role(graph, owner, niche, admin2, pb.ADMIN)

    denied = grpc.StatusCode.PERMISSION_DENIED
    assert refused(lambda: remove(graph, m1, niche, m2))[0] is denied
    assert refused(lambda: remove(graph, admin, niche, owner))[0] is denied
    assert refused(lambda: remove(graph, admin, niche, admin2))[0] is denied
    assert refused(lambda: set_role(graph, admin, niche, m1, pb.ADMIN))[0] is denied
    assert refused(lambda: remove(graph, new_user(), niche, m1))[0] is grpc.StatusCode.NOT_FOUND
    assert refused(lambda: remove(graph, admin, niche, new_user()))[0] is grpc.StatusCode.NOT_FOUND

    remove(graph, admin, niche, m1)
    remove(graph, owner, niche, admin2)
    remove(graph, m2, niche, m2)  # leaving
    assert roles(graph, owner, niche) == {owner: pb.OWNER, admin: pb.ADMIN}
    status, _, _ = refused(lambda: graph.stub.GetNiche(pb.GetNicheRequest(actor_id=m1,
                                                                          niche_id=niche)))
    assert status is grpc.StatusCode.NOT_FOUND
    assert graph.stub.GetNiche(pb.GetNicheRequest(actor_id=owner, niche_id=niche)).member_count == 2


def test_the_owner_hands_over_before_leaving_and_the_last_one_out_archives(graph: Graph) -> None:
    niche, owner, admin, m1, m2 = staffed_niche(graph)
    status, code, _ = refused(lambda: remove(graph, owner, niche, owner))
    assert (status, code) == (grpc.StatusCode.FAILED_PRECONDITION, "owner_must_transfer")
    status, code, _ = refused(lambda: set_role(graph, owner, niche, owner, pb.MEMBER))
    assert (status, code) == (grpc.StatusCode.FAILED_PRECONDITION, "owner_must_transfer")

    set_role(graph, owner, niche, m1, pb.OWNER)
    assert roles(graph, m1, niche) == {owner: pb.ADMIN, admin: pb.ADMIN, m1: pb.OWNER,
                                       m2: pb.MEMBER}
    assert graph.stub.GetNiche(pb.GetNicheRequest(actor_id=m1, niche_id=niche)).my_role == pb.OWNER
    set_role(graph, m1, niche, admin, pb.MEMBER)  # the new owner demotes
    for user in (owner, admin, m2):
        remove(graph, user, niche, user)
    remove(graph, m1, niche, m1)  # the last member, the owner: the niche is archived
    for user in (owner, m1):
        assert graph.stub.ListNiches(pb.ListNichesRequest(actor_id=user)).items == []
    membership = graph.stub.GetMembership(pb.GetMembershipRequest(niche_id=niche, user_id=m1))
    assert not membership.is_member
    with graph.running.context.pool.connection() as conn:
        row = conn.execute("SELECT archived, member_count FROM niches WHERE niche_id = %s",
                           (niche,)).fetchone()
    assert row == (True, 0)


def test_blocks_are_idempotent_listed_and_seen_both_ways(graph: Graph) -> None:
    me, you, them, stranger = new_user(), new_user(), new_user(), new_user()
    block = pb.BlockRequest(actor_id=me, user_id=you)
    graph.stub.Block(block)
    graph.stub.Block(block)  # again: no error, nothing new
    graph.stub.Block(pb.BlockRequest(actor_id=them, user_id=me))
    assert list(graph.stub.ListBlocks(pb.ListBlocksRequest(actor_id=me)).user_ids) == [you]
    status, _, details = refused(lambda: graph.stub.Block(pb.BlockRequest(actor_id=me,
                                                                          user_id=me)))
    assert (status, details) == (grpc.StatusCode.INVALID_ARGUMENT, {"user_id": "is yourself"})

    def among(user: str, others: list[str]) -> list[str]:
        return list(graph.stub.BlockedAmong(pb.BlockedAmongRequest(user_id=user,
                                                                   other_ids=others)).blocked_ids)

    assert among(me, [stranger, them, you]) == [them, you]
    assert among(you, [stranger, me]) == [me]  # the other direction
    graph.stub.Unblock(block)
    graph.stub.Unblock(block)
    assert graph.stub.ListBlocks(pb.ListBlocksRequest(actor_id=me)).user_ids == []
    assert among(you, [me]) == []
    with graph.running.context.pool.connection() as conn:
        types = [r[0] for r in conn.execute(
            "SELECT event_type FROM events WHERE stream_id = %s ORDER BY version", (me,))]
    assert types == ["kith.graph.UserBlocked", "kith.graph.UserUnblocked"]
