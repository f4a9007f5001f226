"""Whatever commands arrive in whatever order, a niche's invariants hold after every event."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kith.common.errors import DomainError
from kith.graph.domain.niche import Niche
from kith.graph.domain.rules import InviteTerms, NicheSettings, Role

NOW = 1_700_000_000_000
USERS = [f"u{i}" for i in range(6)]
CAP = 4

user = st.sampled_from(USERS)
command = st.one_of(
    st.tuples(st.just("invite"), user, st.integers(1, 3)),
    st.tuples(st.just("accept"), user, st.integers(0, 3)),
    st.tuples(st.just("remove"), user, user),
    st.tuples(st.just("role"), user, user, st.sampled_from(list(Role))),
    st.tuples(st.just("delete_account"), user),
)


def decide(niche: Niche, cmd: tuple, step: int) -> list:
    match cmd:
        case ("invite", actor, uses):
            return niche.create_invite(actor, f"i{step}", f"h{step}", InviteTerms(uses, 60), NOW)
        case ("accept", joiner, pick):
            codes = list(niche.invites)
            return niche.accept_invite(joiner, codes[pick % len(codes)] if codes else "-", NOW)
        case ("remove", actor, target):
            return niche.remove_member(actor, target, NOW)
        case ("role", actor, target, role):
            return niche.change_role(actor, target, role, NOW)
        case ("delete_account", gone):
            return niche.remove_deleted_account(gone, NOW)
    raise AssertionError(cmd)


def check_invariants(niche: Niche) -> None:
    assert len(niche.members) <= niche.member_cap
    owners = [m.user_id for m in niche.members.values() if m.role is Role.OWNER]
    if niche.archived:
        assert not niche.members
    else:
        assert owners == [niche.owner_id]
    for invite in niche.invites.values():
        assert invite.uses <= invite.max_uses


@settings(max_examples=200, deadline=None)
@given(st.lists(command, max_size=40))
def test_invariants_hold_for_any_command_sequence(commands: list[tuple]) -> None:
    recorded = Niche.create("n", USERS[0], NicheSettings("n", "custom", "", CAP), NOW)
    niche = Niche.replay("n", recorded)
    for step, cmd in enumerate(commands):
        if niche.archived:
            break
        try:
            events = decide(niche, cmd, step)
        except DomainError:
            continue
        niche.apply_all(events)
        recorded += events
        check_invariants(niche)
    assert Niche.replay("n", recorded) == niche  # what a command saw is what replay rebuilds
