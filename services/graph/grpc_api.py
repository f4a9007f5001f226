"""The gRPC face of the graph: validates requests, calls the application, maps the results."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from kith.common.validation import Fields
from kith.graph.application import GraphApplication, IssuedInvite
from kith.graph.domain.rules import Role, rules_of
from kith.graph.profile_grpc import ProfileServicer
from kith.graph.readmodel import MemberRow, NicheRow
from kith.protos import graph_pb2, graph_pb2_grpc

_PB_ROLES = {Role.OWNER: graph_pb2.OWNER, Role.ADMIN: graph_pb2.ADMIN,
             Role.MEMBER: graph_pb2.MEMBER}
_ROLES: dict[int, Role] = {pb: role for role, pb in _PB_ROLES.items()}


def _role(fields: Fields, value: int) -> Role:
    """The role a protobuf enum names; ROLE_UNSPECIFIED and unknown values are refused."""
    if value not in _ROLES:
        fields.add("role", "must be OWNER, ADMIN or MEMBER")
        return Role.MEMBER
    return _ROLES[value]


def _niche(row: NicheRow) -> graph_pb2.Niche:
    return graph_pb2.Niche(
        id=row.niche_id, name=row.name, kind=row.kind, description=row.description,
        member_cap=row.member_cap, member_count=row.member_count,
        my_role=_PB_ROLES[row.my_role] if row.my_role else graph_pb2.ROLE_UNSPECIFIED,
        created_at_ms=row.created_at_ms, archived=row.archived,
        post_types=sorted(rules_of(row.kind).post_types),
        views=sorted(rules_of(row.kind).views))


def _member(row: MemberRow) -> graph_pb2.Member:
    return graph_pb2.Member(user_id=row.user_id, role=_PB_ROLES[row.role],
                            joined_at_ms=row.joined_at_ms)


def _invite(invite: IssuedInvite) -> graph_pb2.Invite:
    return graph_pb2.Invite(code=invite.code, niche_id=invite.niche_id, id=invite.invite_id,
                            max_uses=invite.max_uses, expires_at_ms=invite.expires_at_ms)


class GraphServicer(ProfileServicer, graph_pb2_grpc.GraphServiceServicer):
    app: GraphApplication

    def __init__(self, app: GraphApplication) -> None:
        self.app = app

    # -- commands ---------------------------------------------------------------------------

    def CreateNiche(self, request: graph_pb2.CreateNicheRequest,
                    context: grpc.ServicerContext) -> graph_pb2.Niche:
        i = Fields()
        actor = i.uuid("actor_id", request.actor_id)
        i.done()
        return _niche(self.app.create_niche(actor, request.name, request.kind,
                                            request.description, request.member_cap))

    def CreateInvite(self, request: graph_pb2.CreateInviteRequest,
                     context: grpc.ServicerContext) -> graph_pb2.Invite:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        i.done()
        return _invite(self.app.create_invite(actor, niche, request.max_uses,
                                              request.expires_in_s))

    def AcceptInvite(self, request: graph_pb2.AcceptInviteRequest,
                     context: grpc.ServicerContext) -> graph_pb2.Niche:
        i = Fields()
        actor, code = i.uuid("actor_id", request.actor_id), i.required("code", request.code)
        i.done()
        return _niche(self.app.accept_invite(actor, code))

    def ListInvites(self, request: graph_pb2.ListInvitesRequest,
                    context: grpc.ServicerContext) -> graph_pb2.ListInvitesResponse:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        i.done()
        return graph_pb2.ListInvitesResponse(items=[
            graph_pb2.InviteInfo(id=v.invite_id, max_uses=v.max_uses, uses=v.uses,
                                 expires_at_ms=v.expires_at_ms, created_by=v.created_by)
            for v in self.app.list_invites(actor, niche)])

    def RevokeInvite(self, request: graph_pb2.RevokeInviteRequest,
                     context: grpc.ServicerContext) -> graph_pb2.Empty:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        invite = i.uuid("invite_id", request.invite_id)
        i.done()
        self.app.revoke_invite(actor, niche, invite)
        return graph_pb2.Empty()

    def RemoveMember(self, request: graph_pb2.RemoveMemberRequest,
                     context: grpc.ServicerContext) -> graph_pb2.Empty:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        user = i.uuid("user_id", request.user_id)
        i.done()
        self.app.remove_member(actor, niche, user)
        return graph_pb2.Empty()

    def ChangeRole(self, request: graph_pb2.ChangeRoleRequest,
                   context: grpc.ServicerContext) -> graph_pb2.Empty:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        user, role = i.uuid("user_id", request.user_id), _role(i, request.role)
        i.done()
        self.app.change_role(actor, niche, user, role)
        return graph_pb2.Empty()

    def Block(self, request: graph_pb2.BlockRequest,
              context: grpc.ServicerContext) -> graph_pb2.Empty:
        i = Fields()
        actor, user = i.uuid("actor_id", request.actor_id), i.uuid("user_id", request.user_id)
        i.done()
        self.app.block(actor, user)
        return graph_pb2.Empty()

    def Unblock(self, request: graph_pb2.BlockRequest,
                context: grpc.ServicerContext) -> graph_pb2.Empty:
        i = Fields()
        actor, user = i.uuid("actor_id", request.actor_id), i.uuid("user_id", request.user_id)
        i.done()
        self.app.unblock(actor, user)
        return graph_pb2.Empty()

    # -- queries ----------------------------------------------------------------------------

    def GetNiche(self, request: graph_pb2.GetNicheRequest,
                 context: grpc.ServicerContext) -> graph_pb2.Niche:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        i.done()
        return _niche(self.app.get_niche(actor, niche))

    def ListNiches(self, request: graph_pb2.ListNichesRequest,
                   context: grpc.ServicerContext) -> graph_pb2.ListNichesResponse:
        i = Fields()
        actor = i.uuid("actor_id", request.actor_id)
        i.done()
        return graph_pb2.ListNichesResponse(items=[_niche(n) for n in self.app.list_niches(actor)])

    def ListMembers(self, request: graph_pb2.ListMembersRequest,
                    context: grpc.ServicerContext) -> graph_pb2.ListMembersResponse:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        i.done()
        members = self.app.list_members(actor, niche)
        return graph_pb2.ListMembersResponse(items=[_member(m) for m in members])

    def GetMembership(self, request: graph_pb2.GetMembershipRequest,
                      context: grpc.ServicerContext) -> graph_pb2.Membership:
        i = Fields()
        niche, user = i.uuid("niche_id", request.niche_id), i.uuid("user_id", request.user_id)
        i.done()
        found = self.app.membership_kind(niche, user)
        if found is None:
            return graph_pb2.Membership(is_member=False)
        role, kind = found
        return graph_pb2.Membership(is_member=True, role=_PB_ROLES[role], kind=kind,
                                    post_types=sorted(rules_of(kind).post_types))

    def SharesNiche(self, request: graph_pb2.SharesNicheRequest,
                    context: grpc.ServicerContext) -> graph_pb2.SharesNicheResponse:
        i = Fields()
        user, others = i.uuid("user_id", request.user_id), i.uuids("user_ids", request.user_ids)
        i.done()
        return graph_pb2.SharesNicheResponse(user_ids=self.app.shares_niche(user, others))

    def ListBlocks(self, request: graph_pb2.ListBlocksRequest,
                   context: grpc.ServicerContext) -> graph_pb2.ListBlocksResponse:
        i = Fields()
        actor = i.uuid("actor_id", request.actor_id)
        i.done()
        return graph_pb2.ListBlocksResponse(user_ids=self.app.list_blocks(actor))

    def BlockedAmong(self, request: graph_pb2.BlockedAmongRequest,
                     context: grpc.ServicerContext) -> graph_pb2.BlockedAmongResponse:
        i = Fields()
        user, others = i.uuid("user_id", request.user_id), i.uuids("other_ids", request.other_ids)
        i.done()
        return graph_pb2.BlockedAmongResponse(blocked_ids=self.app.blocked_among(user, others))


def register(servicer: GraphServicer) -> Callable[[grpc.Server], None]:
    """A registration callback for :func:`kith.common.rpc.start_server`."""
    return lambda server: graph_pb2_grpc.add_GraphServiceServicer_to_server(servicer, server)
