"""Member profiles (a persona per niche), skills, endorsements and the skill directory (graph)."""

from __future__ import annotations

from typing import Any

from kith.gateway import render
from kith.gateway.operations import api
from kith.gateway.pagination import PAGE_QUERY, open_cursor, seal_cursor
from kith.gateway.profiles import display_names
from kith.gateway.schema import array, named, nullable, obj, string
from kith.gateway.views import Call, Reply
from kith.protos import graph_pb2

TAG = "profiles"
LEVELS = ["beginner", "intermediate", "expert"]
SKILL_NAME = string(1, 40)
SKILL_INPUT = named("SkillInput", obj({"name": SKILL_NAME},
                                      {"level": nullable(string(enum=LEVELS))}))
READING = named("Reading", obj({"title": string(1, 200)}, {"author": string(0, 200)}))
PROFILE_BODY = named("ProfileInput", obj(optional={
    "display_name": nullable(string(0, 64)), "headline": nullable(string(0, 120)),
    "birthday": nullable(string(pattern="^[0-9]{2}-[0-9]{2}$", description="MM-DD")),
    "reading": nullable(READING), "skills": array(SKILL_INPUT, max_items=30)}))
DIRECTORY_QUERY = {"q": {**SKILL_NAME, "description": "the start of a skill name (required)"},
                   **PAGE_QUERY}


def profile_json(p: graph_pb2.MemberProfile) -> dict[str, Any]:
    return {"niche_id": p.niche_id, "user_id": p.user_id,
            "display_name": p.display_name or None, "headline": p.headline or None,
            "birthday": p.birthday or None,
            "reading": ({"title": p.reading.title, "author": p.reading.author or None}
                        if p.HasField("reading") else None),
            "skills": render.skills(p.skills)}


@api.operation("GET", "/v1/niches/{niche_id}/profile", summary="My profile (persona) in a niche",
               tag=TAG, response=render.MEMBER_PROFILE)
def get_profile(call: Call) -> Reply:
    p = call.rpc(call.gw.clients.graph.GetProfile, graph_pb2.GetProfileRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"]))
    return Reply(200, profile_json(p))


@api.operation("PUT", "/v1/niches/{niche_id}/profile",
               summary="Set my profile in a niche (fields its kind unlocks; absent = cleared)",
               tag=TAG, response=render.MEMBER_PROFILE, body=PROFILE_BODY)
def put_profile(call: Call) -> Reply:
    b = call.body
    reading = b.get("reading") or {}
    p = call.rpc(call.gw.clients.graph.PutProfile, graph_pb2.PutProfileRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"],
        display_name=b.get("display_name") or "", headline=b.get("headline") or "",
        birthday=b.get("birthday") or "",
        reading=graph_pb2.Reading(title=reading.get("title", ""),
                                  author=reading.get("author") or "") if reading else None,
        skills=[graph_pb2.Skill(name=s["name"], level=s.get("level") or "")
                for s in b.get("skills", [])]))
    return Reply(200, profile_json(p))


@api.operation("POST", "/v1/niches/{niche_id}/members/{user_id}/endorsements",
               summary="Vouch for a skill a co-member lists (once; not yourself)", tag=TAG,
               status=204, body=named("Endorsement", obj({"skill": SKILL_NAME})))
def endorse(call: Call) -> Reply:
    call.rpc(call.gw.clients.graph.Endorse, graph_pb2.EndorseRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"], user_id=call.params["user_id"],
        skill=call.body["skill"]))
    return Reply(204)


@api.operation("DELETE", "/v1/niches/{niche_id}/members/{user_id}/endorsements/{skill}",
               summary="Take my endorsement back", tag=TAG, status=204,
               path_params={"skill": SKILL_NAME})
def unendorse(call: Call) -> Reply:
    call.rpc(call.gw.clients.graph.Unendorse, graph_pb2.EndorseRequest(
        actor_id=call.user_id, niche_id=call.params["niche_id"], user_id=call.params["user_id"],
        skill=call.params["skill"]))
    return Reply(204)


@api.operation("GET", "/v1/skills",
               summary="The skill directory: who can do what across my niches that unlock "
                       "skills, most endorsed first (never across a block)",
               tag=TAG, query=DIRECTORY_QUERY, response=render.list_of(render.DIRECTORY_ENTRY))
def search_skills(call: Call) -> Reply:
    q = call.query.get("q", "")
    listing = f"skills:{q}"
    after = open_cursor(call.gw.cursors, call.query.get("cursor"), listing)
    reply = call.rpc(call.gw.clients.graph.SearchSkills, graph_pb2.SearchSkillsRequest(
        actor_id=call.user_id, q=q, limit=call.query["limit"],
        cursor=after if isinstance(after, str) else ""))
    names = display_names(call, (e.user_id for e in reply.items if not e.display_name))
    return Reply(200, {"items": [render.directory_entry(e, names) for e in reply.items],
                       "next_cursor": seal_cursor(call.gw.cursors, reply.next_cursor, listing)})
