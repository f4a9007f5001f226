"""Value rules of the graph: roles, kinds, limits, and validation of niche and invite input."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from kith.common import text
from kith.common.errors import InvalidArgument


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


KINDS = frozenset({"family", "friends", "book_club", "professional", "skills", "neighbourhood",
                   "custom"})
NAME_MAX = 100
DESCRIPTION_MAX = 1000
DEFAULT_CAP = 150
MIN_CAP = 2

INVITE_DEFAULT_MAX_USES = 1
INVITE_MAX_USES = 1000
INVITE_DEFAULT_TTL_S = 7 * 24 * 3600
INVITE_MIN_TTL_S = 60
INVITE_MAX_TTL_S = 30 * 24 * 3600
_CODE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class NicheSettings:
    """Validated, normalised input of a new niche."""

    name: str
    kind: str
    description: str
    member_cap: int


@dataclass(frozen=True)
class InviteTerms:
    """Validated terms of a new invite."""

    max_uses: int
    ttl_s: int


def validate_niche(name: str, kind: str, description: str, member_cap: int,
                   max_cap: int) -> NicheSettings:
    """Normalise niche input (``member_cap`` 0 = default) or raise with every bad field."""
    name = text.clean(name).strip()
    description = text.clean(description).strip()
    problems: dict[str, str] = {}
    if not 1 <= len(name) <= NAME_MAX:
        problems["name"] = f"must be 1 to {NAME_MAX} characters"
    elif why := text.problem(name):
        problems["name"] = why
    if why := text.problem(description, multiline=True):
        problems["description"] = why
    if kind not in KINDS:
        problems["kind"] = f"must be one of {', '.join(sorted(KINDS))}"
    if len(description) > DESCRIPTION_MAX:
        problems["description"] = f"must be at most {DESCRIPTION_MAX} characters"
    cap = member_cap or min(DEFAULT_CAP, max_cap)
    if not MIN_CAP <= cap <= max_cap:
        problems["member_cap"] = f"must be between {MIN_CAP} and {max_cap}"
    if problems:
        raise InvalidArgument("invalid niche", details=problems)
    return NicheSettings(name, kind, description, cap)


def validate_invite_terms(max_uses: int, expires_in_s: int) -> InviteTerms:
    """Normalise invite terms (0 = default) or raise with every bad field."""
    uses = max_uses or INVITE_DEFAULT_MAX_USES
    ttl = expires_in_s or INVITE_DEFAULT_TTL_S
    problems: dict[str, str] = {}
    if not 1 <= uses <= INVITE_MAX_USES:
        problems["max_uses"] = f"must be between 1 and {INVITE_MAX_USES}"
    if not INVITE_MIN_TTL_S <= ttl <= INVITE_MAX_TTL_S:
        problems["expires_in_s"] = f"must be between {INVITE_MIN_TTL_S} and {INVITE_MAX_TTL_S}"
    if problems:
        raise InvalidArgument("invalid invite", details=problems)
    return InviteTerms(uses, ttl)


def new_invite_code() -> str:
    """A fresh random, URL-safe invite code (16 characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def is_well_formed_code(code: str) -> bool:
    return bool(_CODE.match(code))


def hash_code(code: str) -> str:
    """What is stored of an invite code: its SHA-256, hex. The code itself is never recorded."""
    return hashlib.sha256(code.encode()).hexdigest()


# -- what each kind of niche is for ----------------------------------------------------------

@dataclass(frozen=True)
class KindRules:
    """What a kind of niche unlocks: post types, member-profile fields and views."""

    post_types: frozenset[str]
    profile_fields: frozenset[str]
    views: frozenset[str]


POST_TYPES = frozenset({"text", "highlight", "ask", "moment"})
PROFILE_FIELDS = frozenset({"display_name", "headline", "birthday", "reading", "skills"})
VIEWS = frozenset({"upcoming", "shelf", "skill_directory"})


def _kind(post_types: str, profile_fields: str, views: str) -> KindRules:
    return KindRules(frozenset(post_types.split()), frozenset(profile_fields.split()),
                     frozenset(views.split()))


# The one table of what each kind unlocks (API.md "Purpose-built niches"); `custom` unlocks all.
KIND_RULES: dict[str, KindRules] = {
    "family": _kind("text moment", "display_name birthday", "upcoming"),
    "friends": _kind("text moment", "display_name birthday", "upcoming"),
    "book_club": _kind("text highlight", "display_name reading", "shelf"),
    "professional": _kind("text ask", "display_name headline skills", "skill_directory"),
    "skills": _kind("text ask", "display_name skills", "skill_directory"),
    "neighbourhood": _kind("text ask", "display_name skills", "skill_directory"),
    "custom": KindRules(POST_TYPES, PROFILE_FIELDS, VIEWS),
}
assert set(KIND_RULES) == KINDS


def rules_of(kind: str) -> KindRules:
    """The rules of ``kind``; an unknown kind (never recorded) unlocks only text."""
    return KIND_RULES.get(kind, _kind("text", "display_name", ""))


def kinds_unlocking_view(view: str) -> list[str]:
    """The kinds whose niches offer ``view`` (e.g. every kind with a skill directory)."""
    return sorted(k for k, r in KIND_RULES.items() if view in r.views)


def check_profile_fields_allowed(kind: str, fields: Iterable[str]) -> None:
    """Refuse profile fields the niche's kind does not unlock (400 not_allowed_in_niche_kind)."""
    refused = sorted(set(fields) - rules_of(kind).profile_fields)
    if refused:
        raise InvalidArgument(f"a {kind} niche does not have these profile fields",
                              code="not_allowed_in_niche_kind",
                              details={f: f"not available in a {kind} niche" for f in refused})
