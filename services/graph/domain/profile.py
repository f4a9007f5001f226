"""A member's profile in one niche (their persona), its skills and their endorsements.

Each membership profile has a stream of its own (:func:`profile_stream`), so
setting a persona never contends with joins and invites on the niche's stream.
The niche's kind decides which fields a profile may hold (the table in
:mod:`kith.graph.domain.rules`); membership is checked by the application
against the niche's read model, which the niche's own stream keeps.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from kith.common import text
from kith.common.errors import InvalidArgument, check
from kith.graph.domain.rules import check_profile_fields_allowed, rules_of
from kith.graph.events import (
    MemberProfileChanged,
    ProfileEvent,
    SkillEndorsed,
    SkillEndorsementWithdrawn,
)

PROFILE_NAMESPACE = uuid.UUID("8f1c2d7e-5b0a-4c61-9a57-3e1d6f0b9c42")
DISPLAY_NAME_MAX = 64
HEADLINE_MAX = 120
READING_FIELD_MAX = 200
SKILLS_MAX = 30
SKILL_NAME_MAX = 40
LEVELS = ("beginner", "intermediate", "expert")
_BIRTHDAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def profile_stream(niche_id: str, user_id: str) -> uuid.UUID:
    """The stream of ``user_id``'s profile in ``niche_id``."""
    return uuid.uuid5(PROFILE_NAMESPACE, f"{niche_id}/{user_id}")


def normalise_skill(name: str) -> str:
    """Skill names are stored trimmed, inner whitespace collapsed, lower-case."""
    return " ".join(text.clean(name).split()).lower()


@dataclass(frozen=True)
class SkillLevel:
    name: str
    level: str = ""


@dataclass(frozen=True)
class Profile:
    """What a member shows of themselves in one niche (empty fields fall back / are absent)."""

    display_name: str = ""
    headline: str = ""
    birthday: str = ""  # MM-DD
    reading_title: str = ""
    reading_author: str = ""
    skills: tuple[SkillLevel, ...] = ()

    def given(self) -> list[str]:
        """The profile fields this profile sets (what the niche's kind must unlock)."""
        names = {"display_name": self.display_name, "headline": self.headline,
                 "birthday": self.birthday, "reading": self.reading_title,
                 "skills": self.skills}
        return [name for name, value in names.items() if value]

    def to_json(self) -> str:
        return json.dumps({
            "display_name": self.display_name, "headline": self.headline,
            "birthday": self.birthday,
            "reading": ({"title": self.reading_title, "author": self.reading_author}
                        if self.reading_title else None),
            "skills": [{"name": s.name, "level": s.level} for s in self.skills]},
            separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str) -> Profile:
        """A recorded profile; one whose key was destroyed (empty) reads as no profile."""
        if not data:
            return cls()
        raw = json.loads(data)
        reading = raw.get("reading") or {}
        return cls(raw.get("display_name", ""), raw.get("headline", ""), raw.get("birthday", ""),
                   reading.get("title", ""), reading.get("author", ""),
                   tuple(SkillLevel(s["name"], s.get("level", "")) for s in raw.get("skills", [])))


def validate_profile(display_name: str, headline: str, birthday: str, reading_title: str,
                     reading_author: str, skills: Iterable[tuple[str, str]]) -> Profile:
    """A normalised profile, or every bad field at once."""
    problems: dict[str, str] = {}
    # A persona is a name other members see: the same hygiene as account names.
    display_name, headline, reading_title, reading_author = (
        text.clean(value).strip()
        for value in (display_name, headline, reading_title, reading_author))
    for field_name, value in (("display_name", display_name), ("headline", headline),
                              ("reading", reading_title), ("reading", reading_author)):
        if why := text.problem(value):
            problems[field_name] = why
    if len(display_name) > DISPLAY_NAME_MAX:
        problems["display_name"] = f"must be at most {DISPLAY_NAME_MAX} characters"
    if len(headline) > HEADLINE_MAX:
        problems["headline"] = f"must be at most {HEADLINE_MAX} characters"
    if birthday and not _valid_birthday(birthday):
        problems["birthday"] = "must be a day of the year MM-DD"
    if len(reading_title) > READING_FIELD_MAX or len(reading_author) > READING_FIELD_MAX:
        problems["reading"] = f"title and author must be at most {READING_FIELD_MAX} characters"
    elif reading_author and not reading_title:
        problems["reading.title"] = "is required"
    listed: dict[str, SkillLevel] = {}
    for name, level in skills:
        skill = normalise_skill(name)
        if not 1 <= len(skill) <= SKILL_NAME_MAX:
            problems["skills"] = f"each name must be 1 to {SKILL_NAME_MAX} characters"
        elif why := text.problem(skill):
            problems["skills"] = f"each name {why}"
        elif level and level not in LEVELS:
            problems["skills"] = f"each level must be one of {', '.join(LEVELS)}"
        listed[skill] = SkillLevel(skill, level)
    if len(listed) > SKILLS_MAX:
        problems["skills"] = f"at most {SKILLS_MAX} skills"
    if problems:
        raise InvalidArgument("invalid profile", details=problems)
    return Profile(display_name, headline, birthday, reading_title, reading_author,
                   tuple(listed.values()))


def _valid_birthday(value: str) -> bool:
    match = _BIRTHDAY.match(value)
    return bool(match) and int(value[3:]) <= _DAYS_IN_MONTH[int(value[:2]) - 1]


def check_skill_listed(profile: Profile, skill: str) -> None:
    check(any(s.name == skill for s in profile.skills),
          InvalidArgument("they do not list that skill here",
                          details={"skill": "is not one of the member's skills"}))


def check_not_self(endorser_id: str, user_id: str) -> None:
    check(endorser_id != user_id,
          InvalidArgument("you cannot endorse yourself", details={"user_id": "is yourself"}))


def check_kind_has_skills(kind: str) -> None:
    check("skills" in rules_of(kind).profile_fields,
          InvalidArgument(f"a {kind} niche has no skills", code="not_allowed_in_niche_kind",
                          details={"skill": f"not available in a {kind} niche"}))


@dataclass
class MemberProfile:
    """One member's profile in one niche as of ``version`` of its stream."""

    niche_id: str
    user_id: str
    version: int = 0
    profile: Profile = field(default_factory=Profile)
    endorsements: set[tuple[str, str]] = field(default_factory=set)  # (skill, endorser)

    @classmethod
    def replay(cls, niche_id: str, user_id: str, events: Iterable[ProfileEvent]) -> MemberProfile:
        state = cls(niche_id, user_id)
        return state.apply_all(events)

    def apply(self, event: ProfileEvent) -> None:
        self.version += 1
        match event:
            case MemberProfileChanged():
                self.profile = Profile.from_json(event.profile)
            case SkillEndorsed():
                self.endorsements.add((event.skill, event.endorser_id))
            case SkillEndorsementWithdrawn():
                self.endorsements.discard((event.skill, event.endorser_id))

    def apply_all(self, events: Iterable[ProfileEvent]) -> MemberProfile:
        for event in events:
            self.apply(event)
        return self

    # -- decisions --------------------------------------------------------------------------

    def put(self, actor_id: str, kind: str, profile: Profile, now_ms: int) -> list[ProfileEvent]:
        """The member replaces their profile; fields the kind does not unlock are refused."""
        check(actor_id == self.user_id, InvalidArgument("only your own profile"))
        check_profile_fields_allowed(kind, profile.given())
        if profile == self.profile and self.version:
            return []
        return [MemberProfileChanged(self.niche_id, self.user_id, profile.to_json(), now_ms)]

    def endorse(self, endorser_id: str, kind: str, skill: str,
                now_ms: int) -> list[ProfileEvent]:
        """Once per endorser and skill: endorsing again records nothing."""
        check_kind_has_skills(kind)
        check_not_self(endorser_id, self.user_id)
        skill = normalise_skill(skill)
        check_skill_listed(self.profile, skill)
        if (skill, endorser_id) in self.endorsements:
            return []
        return [SkillEndorsed(self.niche_id, self.user_id, skill, endorser_id, now_ms)]

    def withdraw(self, endorser_id: str, skill: str, now_ms: int) -> list[ProfileEvent]:
        skill = normalise_skill(skill)
        if (skill, endorser_id) not in self.endorsements:
            return []
        return [SkillEndorsementWithdrawn(self.niche_id, self.user_id, skill, endorser_id,
                                          now_ms)]

    def withdraw_all_by(self, endorser_id: str, now_ms: int) -> list[ProfileEvent]:
        """Every endorsement ``endorser_id`` gave here (their account was deleted)."""
        return [SkillEndorsementWithdrawn(self.niche_id, self.user_id, skill, endorser_id, now_ms)
                for skill, by in sorted(self.endorsements) if by == endorser_id]
