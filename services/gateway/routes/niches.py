"""Niches, memberships, invites and blocks (graph)."""

from __future__ import annotations

from kith.gateway import render
from kith.gateway.operations import INVITE_CODE, api
from kith.gateway.pagination import PAGE_QUERY, keyset_page
from kith.gateway.profiles import display_names
from kith.gateway.schema import array, integer, obj, string, uuid_string
from kith.gateway.views import Call, Reply
from kith.protos import graph_pb2

TAG = "niches"
MAX_INVITE_USES = 10_000
MAX_INVITE_TTL_S = 90 * 24 * 3600


@api.operation("POST", "/v1/niches", summary="Create a niche (I become its owner)", tag=TAG,
               status=201, response=render.NICHE,
               body=obj({"name": string(1, 100), "kind": string(enum=render.NICHE_KINDS)},
                        {"member_cap": integer(2, 100_000), "description": string(0, 1000)}))
def create_niche(call: Call) -> Reply:
    b = call.body
    n = call.rpc(call.gw.clients.graph.CreateNiche, graph_pb2.CreateNicheRequest(
        actor_id=call.user_id, name=b["name"], kind=b["kind"],
        member_cap=b.get("member_cap", 0), description=b.get("description", "")))
    return Reply(201, render.niche(n), {"Location": f"/v1/niches/{n.id}"})


@api.operation("GET", "/v1/niches", summary="The niches I belong to", tag=TAG,
               query=PAGE_QUERY, response=render.list_of(render.NICHE))
def list_niches(call: Call) -> Reply:
    reply = call.rpc(call.gw.clients.graph.ListNiches,
                     graph_pb2.ListNichesRequest(actor_id=call.user_id))
    page = keyset_page(reply.items, lambda n: [n.created_at_ms, n.id], call.query["limit"],
                       call.query.get("cursor"), call.gw.cursors, "niches")
    return Reply(200, page.json(render.niche))


@api.operation("GET", "/v1/niches/{niche_id}", summary="A niche I belong to", tag=TAG,
               response=render.NICHE)
def get_niche(call: Call) -> Reply:
    n = call.rpc(call.gw.clients.graph.GetNiche, graph_pb2.GetNicheRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"]))
    return Reply(200, render.niche(n))


@api.operation("GET", "/v1/niches/{niche_id}/members",
               summary="Members of a niche I belong to, as the niche shows them (personas); "
                       "skill= keeps those with a skill starting with it",
               tag=TAG, query={**PAGE_QUERY, "skill": string(1, 40)},
               response=render.list_of(render.MEMBER))
def list_members(call: Call) -> Reply:
    skill = call.query.get("skill", "")
    reply = call.rpc(call.gw.clients.graph.ListMemberProfiles,
                     graph_pb2.ListMemberProfilesRequest(
                         actor_id=call.user_id, niche_id=call.params["niche_id"], skill=skill))
    page = keyset_page(reply.items, lambda m: [m.joined_at_ms, m.user_id], call.query["limit"],
                       call.query.get("cursor"), call.gw.cursors,
                       f"members:{call.params['niche_id']}:{skill}")
    names = display_names(call, (m.user_id for m in page.items if not m.display_name))
    return Reply(200, page.json(lambda m: render.member_profile(m, names)))


@api.operation("POST", "/v1/niches/{niche_id}/invites",
               summary="Create an invite code (owner/admin)", tag=TAG, status=201,
               response=render.INVITE, errors=(403,),
               body=obj(optional={"max_uses": integer(1, MAX_INVITE_USES),
                                  "expires_in_s": integer(60, MAX_INVITE_TTL_S)}))
def create_invite(call: Call) -> Reply:
    i = call.rpc(call.gw.clients.graph.CreateInvite, graph_pb2.CreateInviteRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"],
        max_uses=call.body.get("max_uses", 1), expires_in_s=call.body.get("expires_in_s", 0)))
    return Reply(201, render.invite(i))


@api.operation("GET", "/v1/niches/{niche_id}/invites",
               summary="The niche's working invites (owner/admin; codes are never shown again)",
               tag=TAG, errors=(403,), response=obj({"items": array(render.INVITE_INFO)},
                                                    closed=False))
def list_invites(call: Call) -> Reply:
    reply = call.rpc(call.gw.clients.graph.ListInvites, graph_pb2.ListInvitesRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"]))
    return Reply(200, {"items": [render.invite_info(i) for i in reply.items]})


@api.operation("DELETE", "/v1/niches/{niche_id}/invites/{invite_id}",
               summary="Revoke an invite (owner/admin): its code stops working at once",
               tag=TAG, status=204, errors=(403,))
def revoke_invite(call: Call) -> Reply:
    call.rpc(call.gw.clients.graph.RevokeInvite, graph_pb2.RevokeInviteRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"],
        invite_id=call.params["invite_id"]))
    return Reply(204)


@api.operation("POST", "/v1/invites/{code}/accept", summary="Join a niche with an invite code",
               tag=TAG, response=render.NICHE, errors=(409,), path_params={"code": INVITE_CODE})
def accept_invite(call: Call) -> Reply:
    n = call.rpc(call.gw.clients.graph.AcceptInvite, graph_pb2.AcceptInviteRequest(
        actor_id=call.user_id, code=call.params["code"]))
    return Reply(200, render.niche(n))


@api.operation("DELETE", "/v1/niches/{niche_id}/members/{user_id}",
               summary="Leave (myself) or remove a member (owner/admin)", tag=TAG, status=204,
               errors=(403, 409))
def remove_member(call: Call) -> Reply:
    call.rpc(call.gw.clients.graph.RemoveMember, graph_pb2.RemoveMemberRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"], user_id=call.params["user_id"]))
    return Reply(204)


@api.operation("PATCH", "/v1/niches/{niche_id}/members/{user_id}",
               summary="Change a member's role (owner only; owner hands ownership over)",
               tag=TAG, status=204, errors=(403, 409),
               body=obj({"role": string(enum=list(render.ROLE_VALUES))}))
def change_role(call: Call) -> Reply:
    call.rpc(call.gw.clients.graph.ChangeRole, graph_pb2.ChangeRoleRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"], user_id=call.params["user_id"],
        role=render.ROLE_VALUES[call.body["role"]]))
    return Reply(204)


@api.operation("POST", "/v1/blocks", summary="Block a user (hides both ways)", tag="blocks",
               status=204, body=obj({"user_id": uuid_string()}))
def block_user(call: Call) -> Reply:
    call.rpc(call.gw.clients.graph.Block, graph_pb2.BlockRequest(
        actor_id=call.user_id, user_id=call.body["user_id"]))
    return Reply(204)


@api.operation("DELETE", "/v1/blocks/{user_id}", summary="Unblock a user", tag="blocks",
               status=204)
def unblock_user(call: Call) -> Reply:
    call.rpc(call.gw.clients.graph.Unblock, graph_pb2.BlockRequest(
        actor_id=call.user_id, user_id=call.params["user_id"]))
    return Reply(204)


@api.operation("GET", "/v1/blocks", summary="Users I block", tag="blocks", query=PAGE_QUERY,
               response=render.list_of(render.BLOCK))
def list_blocks(call: Call) -> Reply:
    reply = call.rpc(call.gw.clients.graph.ListBlocks,
                     graph_pb2.ListBlocksRequest(actor_id=call.user_id))
    page = keyset_page(list(reply.user_ids), lambda u: [u], call.query["limit"],
                       call.query.get("cursor"), call.gw.cursors, "blocks")
    return Reply(200, page.json(lambda u: {"user_id": u}))
