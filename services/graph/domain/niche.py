"""The niche aggregate: its members and roles, its invites and its cap, rebuilt from its stream.

Every decision reads the state rebuilt from the stream and returns the events
to append; nothing here mutates state except :meth:`Niche.apply`. Because
invites live in the niche's own stream, the store's optimistic concurrency
(one writer per stream version) is what makes the cap and the invites' use
counts hold under concurrent accepts: a decision based on a stale version is
never recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kith.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    check,
    require,
)
from kith.graph.domain.rules import InviteTerms, NicheSettings, Role
from kith.graph.events import (
    ACCOUNT_DELETED,
    LEFT,
    REMOVED,
    InviteCreated,
    InviteRevoked,
    MemberJoined,
    MemberLeft,
    MemberRoleChanged,
    NicheArchived,
    NicheCreated,
    NicheEvent,
)


@dataclass
class Member:
    user_id: str
    role: Role
    joined_at_ms: int


@dataclass
class Invite:
    invite_id: str
    code_sha256: str
    created_by: str
    max_uses: int
    expires_at_ms: int
    uses: int = 0
    created_seq: int = 0  # the niche version that recorded it: orders it against removals
    revoked: bool = False

    def usable(self, now_ms: int) -> bool:
        return not self.revoked and self.uses < self.max_uses and now_ms < self.expires_at_ms


# -- invariants -------------------------------------------------------------------------------

def check_member(niche: Niche, user_id: str) -> Member:
    """The user's membership; a niche is NOT_FOUND to anyone outside it."""
    member = niche.members.get(user_id)
    member = require(member, NotFound("niche not found"))
    return member


def check_manager(member: Member, action: str) -> None:
    """Owners and admins manage a niche; plain members do not."""
    check(member.role in (Role.OWNER, Role.ADMIN),
          PermissionDenied(f"only the owner or an admin may {action}"))


def check_owner(member: Member, action: str) -> None:
    check(member.role is Role.OWNER, PermissionDenied(f"only the owner may {action}"))


def check_outranks(actor: Member, target: Member) -> None:
    """Admins remove plain members only; the owner removes anyone else."""
    allowed = actor.role is Role.OWNER or target.role is Role.MEMBER
    check(allowed, PermissionDenied("only the owner may remove an admin or the owner"))


def check_invite_usable(invite: Invite | None, now_ms: int) -> Invite:
    """Unknown, expired and used-up invites are all just NOT_FOUND."""
    invite = require(invite, NotFound("invite not found"))
    check(invite.usable(now_ms), NotFound("invite not found"))
    return invite


def check_invite_still_vouched(niche: Niche, invite: Invite, user_id: str) -> None:
    """An invite works only while its creator keeps the right to invite, and never for
    someone removed from the niche after it was created (all NOT_FOUND, like a bad code)."""
    check(invite.created_seq > niche.lost_invite_right_seq.get(invite.created_by, 0)
          and invite.created_seq > niche.removed_seq.get(user_id, 0),
          NotFound("invite not found"))


def check_not_member(niche: Niche, user_id: str) -> None:
    check(user_id not in niche.members,
          AlreadyExists("already a member of this niche", code="already_member"))


def check_has_room(niche: Niche) -> None:
    check(len(niche.members) < niche.member_cap,
          FailedPrecondition("the niche is full", code="niche_full",
                             details={"member_cap": niche.member_cap}))


def check_owner_may_leave(niche: Niche, owner: Member) -> None:
    """An owner leaves only as the last member (which archives the niche)."""
    check(owner.role is not Role.OWNER or len(niche.members) == 1,
          FailedPrecondition("hand ownership to another member before leaving",
                             code="owner_must_transfer"))


# -- the aggregate ----------------------------------------------------------------------------

@dataclass
class Niche:
    """A niche as of ``version`` of its stream (0 = does not exist)."""

    niche_id: str
    version: int = 0
    name: str = ""
    kind: str = ""
    description: str = ""
    member_cap: int = 0
    owner_id: str = ""
    created_at_ms: int = 0
    archived: bool = False
    members: dict[str, Member] = field(default_factory=dict)  # in joining order
    invites: dict[str, Invite] = field(default_factory=dict)  # by code SHA-256
    # Niche versions: when each user was last removed, and last lost the right to invite.
    removed_seq: dict[str, int] = field(default_factory=dict)
    lost_invite_right_seq: dict[str, int] = field(default_factory=dict)

    @classmethod
    def replay(cls, niche_id: str, events: Iterable[NicheEvent]) -> Niche:
        niche = cls(niche_id)
        for event in events:
            niche.apply(event)
        return niche

    def apply(self, event: NicheEvent) -> None:
        """Advance the state by one recorded (or just decided) event."""
        self.version += 1
        match event:
            case NicheCreated():
                self.name, self.kind = event.name, event.kind
                self.description, self.member_cap = event.description, event.member_cap
                self.owner_id, self.created_at_ms = event.owner_id, event.created_at_ms
            case MemberJoined():
                self.members[event.user_id] = Member(event.user_id, Role(event.role),
                                                     event.joined_at_ms)
                if event.invite_id is not None:
                    for invite in self.invites.values():
                        if invite.invite_id == event.invite_id:
                            invite.uses += 1
            case MemberLeft():
                self.members.pop(event.user_id, None)
                self.lost_invite_right_seq[event.user_id] = self.version
                if event.reason == REMOVED:
                    self.removed_seq[event.user_id] = self.version
            case MemberRoleChanged():
                self.members[event.user_id].role = Role(event.role)
                if Role(event.role) is Role.MEMBER:
                    self.lost_invite_right_seq[event.user_id] = self.version
                if event.role == Role.OWNER:
                    self.owner_id = event.user_id
            case InviteCreated():
                self.invites[event.code_sha256] = Invite(
                    event.invite_id, event.code_sha256, event.created_by, event.max_uses,
                    event.expires_at_ms, created_seq=self.version)
            case InviteRevoked():
                for invite in self.invites.values():
                    if invite.invite_id == event.invite_id:
                        invite.revoked = True
            case NicheArchived():
                self.archived = True

    def apply_all(self, events: Iterable[NicheEvent]) -> Niche:
        for event in events:
            self.apply(event)
        return self

    # -- decisions --------------------------------------------------------------------------

    @staticmethod
    def create(niche_id: str, owner_id: str, settings: NicheSettings,
               now_ms: int) -> list[NicheEvent]:
        """A new niche, and its creator joining it as owner, in one append."""
        return [
            NicheCreated(niche_id, owner_id, settings.name, settings.kind, settings.description,
                         settings.member_cap, now_ms),
            MemberJoined(niche_id, owner_id, Role.OWNER.value, None, now_ms),
        ]

    def create_invite(self, actor_id: str, invite_id: str, code_sha256: str, terms: InviteTerms,
                      now_ms: int) -> list[NicheEvent]:
        check_manager(check_member(self, actor_id), "invite")
        return [InviteCreated(self.niche_id, invite_id, code_sha256, actor_id, terms.max_uses,
                              now_ms + terms.ttl_s * 1000)]

    def accept_invite(self, user_id: str, code_sha256: str, now_ms: int) -> list[NicheEvent]:
        check(not self.archived, NotFound("invite not found"))
        invite = check_invite_usable(self.invites.get(code_sha256), now_ms)
        check_invite_still_vouched(self, invite, user_id)
        check_not_member(self, user_id)
        check_has_room(self)
        return [MemberJoined(self.niche_id, user_id, Role.MEMBER.value, invite.invite_id, now_ms)]

    def open_invites(self, actor_id: str, now_ms: int) -> list[Invite]:
        """Invites that still work, for an owner or admin (the codes are never shown again)."""
        check_manager(check_member(self, actor_id), "see invites")
        return [i for i in self.invites.values() if i.usable(now_ms)
                and i.created_seq > self.lost_invite_right_seq.get(i.created_by, 0)]

    def revoke_invite(self, actor_id: str, invite_id: str, now_ms: int) -> list[NicheEvent]:
        """An owner or admin revokes an invite; unknown (or already revoked): NOT_FOUND."""
        check_manager(check_member(self, actor_id), "revoke invites")
        found = any(i.invite_id == invite_id and not i.revoked for i in self.invites.values())
        check(found, NotFound("invite not found"))
        return [InviteRevoked(self.niche_id, invite_id, actor_id, now_ms)]

    def remove_member(self, actor_id: str, user_id: str, now_ms: int) -> list[NicheEvent]:
        """``actor == user`` leaves; otherwise an owner or admin removes ``user``."""
        actor = check_member(self, actor_id)
        if actor_id == user_id:
            check_owner_may_leave(self, actor)
            left = MemberLeft(self.niche_id, user_id, LEFT, None, now_ms)
            if actor.role is Role.OWNER:  # the last member: nobody is left to hand over to
                return [left, NicheArchived(self.niche_id, actor_id, now_ms)]
            return [left]
        check_manager(actor, "remove members")
        target = self.members.get(user_id)
        target = require(target, NotFound("no such member"))
        check_outranks(actor, target)
        return [MemberLeft(self.niche_id, user_id, REMOVED, actor_id, now_ms)]

    def change_role(self, actor_id: str, user_id: str, role: Role,
                    now_ms: int) -> list[NicheEvent]:
        """The owner promotes or demotes; making someone OWNER hands ownership over."""
        actor = check_member(self, actor_id)
        check_owner(actor, "change roles")
        target = self.members.get(user_id)
        target = require(target, NotFound("no such member"))
        if target.role is role:
            return []
        if user_id == actor_id:
            raise FailedPrecondition("hand ownership to another member instead",
                                     code="owner_must_transfer")
        changed = MemberRoleChanged(self.niche_id, user_id, role.value, actor_id, now_ms)
        if role is Role.OWNER:
            return [changed, MemberRoleChanged(self.niche_id, actor_id, Role.ADMIN.value,
                                               actor_id, now_ms)]
        return [changed]

    def remove_deleted_account(self, user_id: str, now_ms: int) -> list[NicheEvent]:
        """A deleted account leaves; its ownership passes to the longest-standing admin, else
        the longest-standing member, else the niche is archived. Idempotent."""
        member = self.members.get(user_id)
        if member is None:
            return []
        left = MemberLeft(self.niche_id, user_id, ACCOUNT_DELETED, None, now_ms)
        if member.role is not Role.OWNER:
            return [left]
        successor = self.successor_of(user_id)
        if successor is None:
            return [left, NicheArchived(self.niche_id, user_id, now_ms)]
        return [MemberRoleChanged(self.niche_id, successor.user_id, Role.OWNER.value, user_id,
                                  now_ms), left]

    def successor_of(self, owner_id: str) -> Member | None:
        """Who inherits ownership: the longest-standing admin, else member (joining order)."""
        others = [m for m in self.members.values() if m.user_id != owner_id]
        admins = [m for m in others if m.role is Role.ADMIN]
        return (admins or others)[0] if admins or others else None

