"""The member-profile RPCs of GraphService: personas, skills, endorsements, the directory."""

from __future__ import annotations

from typing import Protocol

import grpc

from kith.common.validation import Fields
from kith.graph import profile_store
from kith.graph.domain.profile import validate_profile
from kith.graph.domain.rules import Role
from kith.graph.profiles import ProfileApplication
from kith.protos import graph_pb2

_PB_ROLES = {Role.OWNER: graph_pb2.OWNER, Role.ADMIN: graph_pb2.ADMIN,
             Role.MEMBER: graph_pb2.MEMBER}


def _profile(row: profile_store.ProfileRow) -> graph_pb2.MemberProfile:
    out = graph_pb2.MemberProfile(
        niche_id=row.niche_id, user_id=row.user_id, display_name=row.display_name,
        headline=row.headline, birthday=row.birthday,
        skills=[graph_pb2.Skill(name=s.name, level=s.level, endorsements=s.endorsements)
                for s in row.skills],
        role=_PB_ROLES[Role(row.role)] if row.role else graph_pb2.ROLE_UNSPECIFIED,
        joined_at_ms=row.joined_at_ms)
    if row.reading_title:
        out.reading.CopyFrom(graph_pb2.Reading(title=row.reading_title,
                                               author=row.reading_author))
    return out


MAX_DIRECTORY_PAGE = 100
DEFAULT_DIRECTORY_PAGE = 20


class ProfileHolder(Protocol):
    @property
    def profiles(self) -> ProfileApplication:
        """The member-profile application."""


class ProfileServicer:
    """The member-profile RPCs of GraphService (mixed into :class:`GraphServicer`)."""

    app: ProfileHolder

    def GetProfile(self, request: graph_pb2.GetProfileRequest,
                   context: grpc.ServicerContext) -> graph_pb2.MemberProfile:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        i.done()
        return _profile(self.app.profiles.get_profile(actor, niche))

    def PutProfile(self, request: graph_pb2.PutProfileRequest,
                   context: grpc.ServicerContext) -> graph_pb2.MemberProfile:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        i.done()
        profile = validate_profile(request.display_name, request.headline, request.birthday,
                                   request.reading.title, request.reading.author,
                                   [(s.name, s.level) for s in request.skills])
        return _profile(self.app.profiles.put_profile(actor, niche, profile))

    def ListMemberProfiles(self, request: graph_pb2.ListMemberProfilesRequest,
                           context: grpc.ServicerContext
                           ) -> graph_pb2.ListMemberProfilesResponse:
        i = Fields()
        actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
        skill = " ".join(request.skill.split()).lower()
        if len(skill) > 40:
            i.add("skill", "must be at most 40 characters")
        i.done()
        rows = self.app.profiles.member_profiles(actor, niche, skill)
        return graph_pb2.ListMemberProfilesResponse(items=[_profile(r) for r in rows])

    def GetPersonas(self, request: graph_pb2.GetPersonasRequest,
                    context: grpc.ServicerContext) -> graph_pb2.GetPersonasResponse:
        i = Fields()
        actor = i.uuid("actor_id", request.actor_id)
        niches = i.uuids("keys.niche_id", [k.niche_id for k in request.keys])
        users = i.uuids("keys.user_id", [k.user_id for k in request.keys])
        i.done()
        found = self.app.profiles.personas(actor, list(zip(niches, users, strict=True)))
        return graph_pb2.GetPersonasResponse(items=[
            graph_pb2.Persona(niche_id=n, user_id=u, display_name=d) for n, u, d in found])

    def Endorse(self, request: graph_pb2.EndorseRequest,
                context: grpc.ServicerContext) -> graph_pb2.Empty:
        actor, niche, user, skill = _endorsement(request)
        self.app.profiles.endorse(actor, niche, user, skill)
        return graph_pb2.Empty()

    def Unendorse(self, request: graph_pb2.EndorseRequest,
                  context: grpc.ServicerContext) -> graph_pb2.Empty:
        actor, niche, user, skill = _endorsement(request)
        self.app.profiles.unendorse(actor, niche, user, skill)
        return graph_pb2.Empty()

    def SearchSkills(self, request: graph_pb2.SearchSkillsRequest,
                     context: grpc.ServicerContext) -> graph_pb2.SearchSkillsResponse:
        i = Fields()
        actor = i.uuid("actor_id", request.actor_id)
        q = " ".join(request.q.split()).lower()
        if not 1 <= len(q) <= 40:
            i.add("q", "must be 1 to 40 characters")
        limit = i.limit(request.limit, DEFAULT_DIRECTORY_PAGE, MAX_DIRECTORY_PAGE)
        after = None
        if request.cursor:
            after = profile_store.decode_position(request.cursor)
            if after is None:
                i.add("cursor", "is not a cursor from this list")
        i.done()
        rows = self.app.profiles.search_skills(actor, q, after, limit + 1)
        more, rows = len(rows) > limit, rows[:limit]
        return graph_pb2.SearchSkillsResponse(
            items=[graph_pb2.DirectoryEntry(
                user_id=r.user_id, display_name=r.display_name, niche_id=r.niche_id,
                niche_name=r.niche_name, skill=r.skill, level=r.level,
                endorsements=r.endorsements) for r in rows],
            next_cursor=profile_store.encode_position(rows[-1].position()) if more else "")

    def ListBirthdays(self, request: graph_pb2.ListBirthdaysRequest,
                      context: grpc.ServicerContext) -> graph_pb2.ListBirthdaysResponse:
        i = Fields()
        actor = i.uuid("actor_id", request.actor_id)
        i.done()
        return graph_pb2.ListBirthdaysResponse(items=[
            graph_pb2.Birthday(user_id=b.user_id, display_name=b.display_name,
                               niche_id=b.niche_id, niche_name=b.niche_name,
                               birthday=b.birthday)
            for b in self.app.profiles.birthdays(actor)])


def _endorsement(request: graph_pb2.EndorseRequest) -> tuple[str, str, str, str]:
    i = Fields()
    actor, niche = i.uuid("actor_id", request.actor_id), i.uuid("niche_id", request.niche_id)
    user = i.uuid("user_id", request.user_id)
    skill = i.required("skill", " ".join(request.skill.split()).lower(), 40)
    i.done()
    return actor, niche, user, skill
