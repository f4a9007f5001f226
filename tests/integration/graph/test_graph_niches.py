"""Niches, invites, memberships and roles through the real gRPC server."""

from __future__ import annotations

import time

import grpc
import pytest

from kith.common.errors import NotFound
from kith.graph.application import GraphApplication
from kith.protos import graph_pb2 as pb
from tests.integration.graph.graph_helpers import Graph, new_user
from tests.support.rpc import refused

WEEK_MS = 7 * 24 * 3600 * 1000


def create(graph: Graph, owner: str, cap: int = 0, name: str = "Reading circle") -> pb.Niche:
    return graph.stub.CreateNiche(pb.CreateNicheRequest(
        actor_id=owner, name=name, kind="book_club", member_cap=cap, description="Novels"))


def invite(graph: Graph, actor: str, niche_id: str, uses: int = 0) -> pb.Invite:
    return graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=actor, niche_id=niche_id,
                                                          max_uses=uses))


def accept(graph: Graph, user: str, code: str) -> pb.Niche:
    return graph.stub.AcceptInvite(pb.AcceptInviteRequest(actor_id=user, code=code))


def test_create_and_read_a_niche_only_as_a_member(graph: Graph) -> None:
    owner, stranger = new_user(), new_user()
    niche = create(graph, owner)
    assert (niche.name, niche.kind, niche.description) == ("Reading circle", "book_club", "Novels")
    assert (niche.member_cap, niche.member_count, niche.my_role) == (150, 1, pb.OWNER)
    assert abs(niche.created_at_ms - time.time() * 1000) < 60_000
    assert graph.stub.GetNiche(pb.GetNicheRequest(actor_id=owner, niche_id=niche.id)) == niche
    listed = graph.stub.ListNiches(pb.ListNichesRequest(actor_id=owner)).items
    assert [n.id for n in listed] == [niche.id]

    status, code, _ = refused(lambda: graph.stub.GetNiche(
        pb.GetNicheRequest(actor_id=stranger, niche_id=niche.id)))
    assert (status, code) == (grpc.StatusCode.NOT_FOUND, "not_found")
    status, _, _ = refused(lambda: graph.stub.ListMembers(
        pb.ListMembersRequest(actor_id=stranger, niche_id=niche.id)))
    assert status is grpc.StatusCode.NOT_FOUND
    assert graph.stub.ListNiches(pb.ListNichesRequest(actor_id=stranger)).items == []


def test_input_is_validated_with_field_details(graph: Graph) -> None:
    status, code, details = refused(lambda: graph.stub.CreateNiche(pb.CreateNicheRequest(
        actor_id=new_user(), name="", kind="pets", member_cap=501, description="d" * 1001)))
    assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument")
    assert set(details) == {"name", "kind", "member_cap", "description"}
    status, _, details = refused(lambda: graph.stub.CreateInvite(pb.CreateInviteRequest(
        actor_id="nobody", niche_id="nowhere")))
    assert status is grpc.StatusCode.INVALID_ARGUMENT and set(details) == {"actor_id", "niche_id"}
    owner = new_user()
    niche = create(graph, owner)
    _, _, details = refused(lambda: graph.stub.CreateInvite(pb.CreateInviteRequest(
        actor_id=owner, niche_id=niche.id, max_uses=1001, expires_in_s=30)))
    assert set(details) == {"max_uses", "expires_in_s"}
    _, _, details = refused(lambda: graph.stub.ChangeRole(pb.ChangeRoleRequest(
        actor_id=owner, niche_id=niche.id, user_id=owner)))
    assert details == {"role": "must be OWNER, ADMIN or MEMBER"}
    assert refused(lambda: accept(graph, owner, ""))[2] == {"code": "is required"}
    _, _, details = refused(lambda: graph.stub.SharesNiche(pb.SharesNicheRequest(
        user_id=owner, user_ids=["x"])))
    assert details == {"user_ids": "every id must be a UUID"}


def test_invites_admit_members_until_used_up(graph: Graph) -> None:
    owner, alice, bob, carol = new_user(), new_user(), new_user(), new_user()
    niche = create(graph, owner)
    single = invite(graph, owner, niche.id)
    assert single.max_uses == 1 and len(single.code) == 16 and single.niche_id == niche.id
    assert abs(single.expires_at_ms - (time.time() * 1000 + WEEK_MS)) < 60_000

    joined = accept(graph, alice, single.code)
    assert (joined.id, joined.my_role, joined.member_count) == (niche.id, pb.MEMBER, 2)
    assert refused(lambda: accept(graph, bob, single.code))[0] is grpc.StatusCode.NOT_FOUND
    assert refused(lambda: accept(graph, bob, "unknown-code-123"))[0] is grpc.StatusCode.NOT_FOUND
    assert refused(lambda: accept(graph, bob, "?"))[0] is grpc.StatusCode.NOT_FOUND

    multi = invite(graph, owner, niche.id, uses=5)
    status, code, _ = refused(lambda: accept(graph, alice, multi.code))
    assert (status, code) == (grpc.StatusCode.ALREADY_EXISTS, "already_member")
    accept(graph, bob, multi.code)

    # a plain member may not invite; an outsider does not even see the niche
    status, code, _ = refused(lambda: invite(graph, alice, niche.id))
    assert (status, code) == (grpc.StatusCode.PERMISSION_DENIED, "forbidden")
    assert refused(lambda: invite(graph, carol, niche.id))[0] is grpc.StatusCode.NOT_FOUND

    members = graph.stub.ListMembers(pb.ListMembersRequest(actor_id=bob, niche_id=niche.id)).items
    assert [(m.user_id, m.role) for m in members] == [
        (owner, pb.OWNER), (alice, pb.MEMBER), (bob, pb.MEMBER)]
    assert members[0].joined_at_ms <= members[1].joined_at_ms <= members[2].joined_at_ms

    membership = graph.stub.GetMembership(pb.GetMembershipRequest(niche_id=niche.id, user_id=bob))
    assert (membership.is_member, membership.role) == (True, pb.MEMBER)
    assert not graph.stub.GetMembership(
        pb.GetMembershipRequest(niche_id=niche.id, user_id=carol)).is_member

    elsewhere = create(graph, carol)
    shares = graph.stub.SharesNiche(pb.SharesNicheRequest(
        user_id=alice, user_ids=[carol, bob, owner, bob])).user_ids
    assert list(shares) == [bob, owner]
    assert list(graph.stub.SharesNiche(pb.SharesNicheRequest(
        user_id=carol, user_ids=[alice, owner])).user_ids) == []
    assert elsewhere.member_count == 1


def test_a_full_niche_refuses_and_an_expired_invite_is_not_found(graph: Graph) -> None:
    owner, alice, bob = new_user(), new_user(), new_user()
    niche = create(graph, owner, cap=2)
    code = invite(graph, owner, niche.id, uses=10).code
    accept(graph, alice, code)
    status, code_name, details = refused(lambda: accept(graph, bob, code))
    assert (status, code_name, details) == (
        grpc.StatusCode.FAILED_PRECONDITION, "niche_full", {"member_cap": 2})

    roomy = create(graph, owner)
    later = invite(graph, owner, roomy.id)
    ctx = graph.running.context
    in_8_days = GraphApplication(ctx.store, ctx.settings.niche_max_cap,
                                 clock=lambda: int(time.time() * 1000) + WEEK_MS + 86_400_000)
    with pytest.raises(NotFound):
        in_8_days.accept_invite(alice, later.code)
    assert accept(graph, alice, later.code).member_count == 2
