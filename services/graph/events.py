"""The graph's events: type names, payloads as dataclasses, and the dict mapping.

Each dataclass mirrors its Avro schema in ``schemas/graph/<Name>.v1.avsc``
field for field, so the mapping is ``asdict`` one way and ``cls(**data)`` the
other. Niche events live in the niche's stream; block events in the blocker's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from kith.common.events import from_data as common_from_data


@dataclass(frozen=True)
class NicheCreated:
    TYPE: ClassVar[str] = "kith.graph.NicheCreated"
    niche_id: str
    owner_id: str
    name: str
    kind: str
    description: str
    member_cap: int
    created_at_ms: int


@dataclass(frozen=True)
class MemberJoined:
    TYPE: ClassVar[str] = "kith.graph.MemberJoined"
    niche_id: str
    user_id: str
    role: str
    invite_id: str | None
    joined_at_ms: int


@dataclass(frozen=True)
class MemberLeft:
    TYPE: ClassVar[str] = "kith.graph.MemberLeft"
    niche_id: str
    user_id: str
    reason: str  # left, removed, account_deleted
    removed_by: str | None
    left_at_ms: int


@dataclass(frozen=True)
class MemberRoleChanged:
    TYPE: ClassVar[str] = "kith.graph.MemberRoleChanged"
    niche_id: str
    user_id: str
    role: str
    changed_by: str
    changed_at_ms: int


@dataclass(frozen=True)
class InviteCreated:
    TYPE: ClassVar[str] = "kith.graph.InviteCreated"
    niche_id: str
    invite_id: str
    code_sha256: str
    created_by: str
    max_uses: int
    expires_at_ms: int


@dataclass(frozen=True)
class InviteRevoked:
    TYPE: ClassVar[str] = "kith.graph.InviteRevoked"
    niche_id: str
    invite_id: str
    revoked_by: str
    revoked_at_ms: int


@dataclass(frozen=True)
class NicheArchived:
    TYPE: ClassVar[str] = "kith.graph.NicheArchived"
    niche_id: str
    archived_by: str
    archived_at_ms: int


@dataclass(frozen=True)
class UserBlocked:
    TYPE: ClassVar[str] = "kith.graph.UserBlocked"
    blocker_id: str
    blocked_id: str
    at_ms: int


@dataclass(frozen=True)
class UserUnblocked:
    TYPE: ClassVar[str] = "kith.graph.UserUnblocked"
    blocker_id: str
    blocked_id: str
    at_ms: int


@dataclass(frozen=True)
class MemberProfileChanged:
    """A member set their profile in a niche (stream: the membership profile, see
    :func:`kith.graph.domain.profile.profile_stream`). ``profile`` is JSON sealed under
    the member's key."""

    TYPE: ClassVar[str] = "kith.graph.MemberProfileChanged"
    niche_id: str
    user_id: str
    profile: str
    changed_at_ms: int


@dataclass(frozen=True)
class SkillEndorsed:
    """``endorser_id`` vouches for a skill of ``user_id``; ``skill`` is sealed under the
    member's key."""

    TYPE: ClassVar[str] = "kith.graph.SkillEndorsed"
    niche_id: str
    user_id: str
    skill: str
    endorser_id: str
    at_ms: int


@dataclass(frozen=True)
class SkillEndorsementWithdrawn:
    TYPE: ClassVar[str] = "kith.graph.SkillEndorsementWithdrawn"
    niche_id: str
    user_id: str
    skill: str
    endorser_id: str
    at_ms: int


NicheEvent = NicheCreated | MemberJoined | MemberLeft | MemberRoleChanged | InviteCreated \
    | InviteRevoked | NicheArchived
BlockEvent = UserBlocked | UserUnblocked
ProfileEvent = MemberProfileChanged | SkillEndorsed | SkillEndorsementWithdrawn
GraphEvent = NicheEvent | BlockEvent | ProfileEvent

EVENT_CLASSES: dict[str, type[GraphEvent]] = {
    cls.TYPE: cls
    for cls in (NicheCreated, MemberJoined, MemberLeft, MemberRoleChanged, InviteCreated,
                InviteRevoked, NicheArchived, UserBlocked, UserUnblocked, MemberProfileChanged,
                SkillEndorsed, SkillEndorsementWithdrawn)
}

# Reasons a MemberLeft carries.
LEFT = "left"
REMOVED = "removed"
ACCOUNT_DELETED = "account_deleted"


def from_data(event_type: str, data: dict[str, Any]) -> GraphEvent:
    """A decoded payload as its dataclass (fields added by later schemas are ignored)."""
    return common_from_data(EVENT_CLASSES, event_type, data)
