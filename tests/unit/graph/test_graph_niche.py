"""The niche aggregate: decisions and invariants, without infrastructure."""

from __future__ import annotations

import pytest

from kith.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kith.graph.domain.niche import Niche
from kith.graph.domain.rules import InviteTerms, NicheSettings, Role, validate_niche
from kith.graph.events import MemberJoined, MemberLeft, MemberRoleChanged, NicheArchived

NOW = 1_700_000_000_000
NICHE = "n-1"
OWNER, ADMIN, ALICE, BOB, CAROL = "owner", "admin", "alice", "bob", "carol"


def niche(cap: int = 5) -> Niche:
    return Niche.replay(NICHE, Niche.create(NICHE, OWNER, NicheSettings("Book club", "book_club",
                                                                       "", cap), NOW))


def invite(n: Niche, code: str = "h1", uses: int = 10, ttl_s: int = 3600) -> Niche:
    return n.apply_all(n.create_invite(OWNER, f"inv-{code}", code, InviteTerms(uses, ttl_s), NOW))


def join(n: Niche, *users: str, code: str = "h1") -> Niche:
    for user in users:
        n.apply_all(n.accept_invite(user, code, NOW))
    return n


def staffed() -> Niche:
    """owner, admin (promoted), alice and bob as members."""
    n = join(invite(niche()), ADMIN, ALICE, BOB)
    return n.apply_all(n.change_role(OWNER, ADMIN, Role.ADMIN, NOW))


def test_creation_makes_the_creator_owner_in_the_same_append() -> None:
    events = Niche.create(NICHE, OWNER, NicheSettings("x", "family", "", 150), NOW)
    assert [type(e).__name__ for e in events] == ["NicheCreated", "MemberJoined"]
    assert events[1] == MemberJoined(NICHE, OWNER, "owner", None, NOW)
    n = Niche.replay(NICHE, events)
    assert n.version == 2 and n.members[OWNER].role is Role.OWNER and n.owner_id == OWNER


def test_only_managers_invite_and_outsiders_see_nothing() -> None:
    n = join(invite(niche()), ALICE)
    with pytest.raises(PermissionDenied):
        n.create_invite(ALICE, "i2", "h2", InviteTerms(1, 60), NOW)
    with pytest.raises(NotFound):
        n.create_invite(BOB, "i2", "h2", InviteTerms(1, 60), NOW)


def test_invite_uses_and_expiry() -> None:
    n = invite(niche(), uses=1, ttl_s=60)
    with pytest.raises(NotFound):
        n.accept_invite(ALICE, "unknown", NOW)
    with pytest.raises(NotFound):
        n.accept_invite(ALICE, "h1", NOW + 60_000)  # expired
    join(n, ALICE)
    assert n.invites["h1"].uses == 1
    with pytest.raises(NotFound):
        n.accept_invite(BOB, "h1", NOW)  # used up


def test_accepting_twice_is_already_member_and_the_cap_is_niche_full() -> None:
    n = join(invite(niche(cap=3)), ALICE, BOB)
    with pytest.raises(AlreadyExists) as exc:
        n.accept_invite(ALICE, "h1", NOW)
    assert exc.value.code == "already_member"
    with pytest.raises(FailedPrecondition) as full:
        n.accept_invite(CAROL, "h1", NOW)
    assert full.value.code == "niche_full"


def test_removal_rights() -> None:
    n = staffed()
    with pytest.raises(PermissionDenied):
        n.remove_member(ALICE, BOB, NOW)  # plain member
    with pytest.raises(PermissionDenied):
        n.remove_member(ADMIN, OWNER, NOW)  # admin vs owner
    with pytest.raises(NotFound):
        n.remove_member(ADMIN, CAROL, NOW)  # not a member
    assert n.remove_member(ADMIN, ALICE, NOW) == [MemberLeft(NICHE, ALICE, "removed", ADMIN, NOW)]
    assert n.remove_member(OWNER, ADMIN, NOW) == [MemberLeft(NICHE, ADMIN, "removed", OWNER, NOW)]
    assert n.remove_member(BOB, BOB, NOW) == [MemberLeft(NICHE, BOB, "left", None, NOW)]


def test_admins_cannot_remove_admins() -> None:
    n = staffed()
    n.apply_all(n.change_role(OWNER, ALICE, Role.ADMIN, NOW))
    with pytest.raises(PermissionDenied):
        n.remove_member(ADMIN, ALICE, NOW)


def test_owner_must_hand_over_before_leaving_and_the_last_owner_archives() -> None:
    n = staffed()
    with pytest.raises(FailedPrecondition) as exc:
        n.remove_member(OWNER, OWNER, NOW)
    assert exc.value.code == "owner_must_transfer"
    n.apply_all(n.change_role(OWNER, ALICE, Role.OWNER, NOW))
    assert n.members[ALICE].role is Role.OWNER and n.members[OWNER].role is Role.ADMIN
    assert n.owner_id == ALICE
    solo = niche()
    assert solo.remove_member(OWNER, OWNER, NOW) == [
        MemberLeft(NICHE, OWNER, "left", None, NOW), NicheArchived(NICHE, OWNER, NOW)]


def test_role_changes_are_owner_only_and_idempotent() -> None:
    n = staffed()
    with pytest.raises(PermissionDenied):
        n.change_role(ADMIN, ALICE, Role.ADMIN, NOW)
    with pytest.raises(NotFound):
        n.change_role(OWNER, CAROL, Role.ADMIN, NOW)
    with pytest.raises(FailedPrecondition):
        n.change_role(OWNER, OWNER, Role.MEMBER, NOW)
    assert n.change_role(OWNER, ADMIN, Role.ADMIN, NOW) == []
    assert n.change_role(OWNER, OWNER, Role.OWNER, NOW) == []
    assert n.change_role(OWNER, ADMIN, Role.MEMBER, NOW) == [
        MemberRoleChanged(NICHE, ADMIN, "member", OWNER, NOW)]


def test_deleted_owner_hands_over_to_the_longest_standing_admin_else_member() -> None:
    n = staffed()
    n.apply_all(n.change_role(OWNER, BOB, Role.ADMIN, NOW))
    events = n.remove_deleted_account(OWNER, NOW)
    assert events == [MemberRoleChanged(NICHE, ADMIN, "owner", OWNER, NOW),
                      MemberLeft(NICHE, OWNER, "account_deleted", None, NOW)]
    no_admins = join(invite(niche()), ALICE, BOB)
    assert no_admins.successor_of(OWNER).user_id == ALICE  # type: ignore[union-attr]
    solo = niche()
    assert solo.remove_deleted_account(OWNER, NOW)[-1] == NicheArchived(NICHE, OWNER, NOW)
    assert n.apply_all(events).remove_deleted_account(OWNER, NOW) == []


def test_archived_niche_accepts_nobody() -> None:
    n = invite(niche())
    n.apply_all(n.remove_member(OWNER, OWNER, NOW))
    assert n.archived
    with pytest.raises(NotFound):
        n.accept_invite(ALICE, "h1", NOW)


@pytest.mark.parametrize(("name", "kind", "description", "cap", "bad"), [
    ("", "family", "", 0, {"name"}),
    ("x" * 101, "family", "", 0, {"name"}),
    ("   ", "pets", "d" * 1001, 1, {"name", "kind", "description", "member_cap"}),
    ("ok", "custom", "", 501, {"member_cap"}),
])
def test_niche_validation_names_every_bad_field(name: str, kind: str, description: str,
                                                cap: int, bad: set[str]) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_niche(name, kind, description, cap, max_cap=500)
    assert set(exc.value.details) == bad


def test_niche_defaults() -> None:
    assert validate_niche(" Fam ", "family", "", 0, 500) == NicheSettings("Fam", "family", "", 150)
    assert validate_niche("Fam", "family", "", 0, 100).member_cap == 100
    assert validate_niche("x" * 100, "skills", "d" * 1000, 500, 500).member_cap == 500
