"""The identity domain: value rules and the account and session aggregates."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kith.common.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from kith.identity.domain import (
    USERNAME,
    Account,
    AccountDeleted,
    AccountRegistered,
    PasswordChanged,
    ProfileChanged,
    Session,
    SessionRefreshed,
    SessionRevoked,
    check_password_matches,
    check_registration,
    check_session_owner,
    register,
    start_session,
    username_problem,
)

USER = uuid.UUID(int=1)
SESSION = uuid.UUID(int=2)
HOUR_MS = 3_600_000


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=3, max_size=32))
def test_every_name_of_the_alphabet_and_length_is_valid(name: str) -> None:
    assert username_problem(name) is None


@given(st.text(max_size=40))
def test_a_username_is_valid_exactly_when_it_matches_the_rule(name: str) -> None:
    assert (username_problem(name) is None) == bool(USERNAME.fullmatch(name))


@pytest.mark.parametrize(("fields", "bad"), [
    ({"username": "ab"}, {"username"}),
    ({"username": "Abc"}, {"username"}),
    ({"username": "abc\n"}, {"username"}),
    ({"password": "x" * 9}, {"password"}),
    ({"password": "x" * 1025}, {"password"}),
    ({"display_name": ""}, {"display_name"}),
    ({"display_name": " \t"}, {"display_name"}),
    ({"display_name": "x" * 65}, {"display_name"}),
    ({"display_name": "bell\x07"}, {"display_name"}),
    ({"bio": "x" * 501}, {"bio"}),
    ({"bio": "nul\x00"}, {"bio"}),
    ({"username": "", "password": "", "display_name": ""},
     {"username", "password", "display_name"}),
])
def test_registration_rules_name_the_bad_fields(fields: dict[str, str], bad: set[str]) -> None:
    values = {"username": "good_name", "password": "x" * 10, "display_name": "Ann Example",
              "bio": "line one\nline\ttwo", **fields}
    with pytest.raises(InvalidArgument) as exc:
        check_registration(**values)
    assert set(exc.value.details) == bad


def test_limits_are_inclusive() -> None:
    check_registration("a" * 32, "p" * 1024, "d" * 64, "b" * 500)
    check_registration("abc", "p" * 10, "d", "")


def _account(*more: object) -> Account:
    registered = register(USER, "ann", "a long password", "$argon2id$h1", "Ann", "", 1)
    account = Account.replay([registered, *more])  # type: ignore[list-item]
    assert account is not None
    return account


def test_an_account_is_its_events() -> None:
    assert Account.replay([]) is None
    account = _account(ProfileChanged(USER, "Annie", None, 2), ProfileChanged(USER, None, "hi", 3),
                       PasswordChanged(USER, "$argon2id$h2", 4))
    assert (account.display_name, account.bio, account.password_hash, account.version) == (
        "Annie", "hi", "$argon2id$h2", 4)
    assert account.username == "ann" and not account.deleted


def test_a_profile_change_holds_only_what_changes() -> None:
    account = _account()
    assert account.change_profile(None, None, 5) is None
    assert account.change_profile("Ann", "", 5) is None
    assert account.change_profile("Ann", "new", 5) == ProfileChanged(USER, None, "new", 5)
    with pytest.raises(InvalidArgument) as exc:
        account.change_profile("", "x" * 501, 5)
    assert set(exc.value.details) == {"display_name", "bio"}


def test_a_deleted_account_keeps_nothing_and_refuses_everything() -> None:
    account = _account()
    deleted = _account(account.delete(9))
    assert deleted.deleted and deleted.version == 2
    assert (deleted.username, deleted.display_name, deleted.password_hash) == ("", "", "")
    for command in (lambda: deleted.delete(10), lambda: deleted.change_password("h", 10),
                    lambda: deleted.change_profile("New", None, 10)):
        with pytest.raises(NotFound):
            command()
    assert account.delete(9) == AccountDeleted(USER, 9)
    assert isinstance(register(USER, "ann", "p" * 10, "h", "A", "", 1), AccountRegistered)


def test_a_wrong_current_password_is_refused() -> None:
    check_password_matches(True)
    with pytest.raises(PermissionDenied) as exc:
        check_password_matches(False)
    assert exc.value.code == "wrong_password"


def _session(*more: object) -> Session:
    session = Session.replay([start_session(SESSION, USER, "t0", 0, HOUR_MS), *more])  # type: ignore[list-item]
    assert session is not None
    return session


def test_refresh_rotates_the_token() -> None:
    session = _session()
    event = session.refresh("t0", "t1", 10, HOUR_MS)
    assert event == SessionRefreshed(SESSION, USER, "t0", "t1", 10, 10 + HOUR_MS)
    rotated = _session(event)
    assert (rotated.current_token_sha256, rotated.spent_tokens_sha256) == ("t1", {"t0"})
    assert rotated.expires_at_ms == 10 + HOUR_MS and rotated.version == 2


def test_a_session_family_has_an_absolute_lifetime() -> None:
    """Rotation extends a family, but never past its maximum age from the sign-in."""
    session = _session()  # signed in at 0
    max_age = 3 * HOUR_MS
    early = session.refresh("t0", "t1", 10, 2 * HOUR_MS, max_age)
    assert early.expires_at_ms == 10 + 2 * HOUR_MS
    late = _session(early).refresh("t1", "t2", HOUR_MS + 30 * 60_000, 2 * HOUR_MS, max_age)
    assert late.expires_at_ms == max_age  # capped at 3 h, not 3.5 h
    with pytest.raises(Unauthenticated) as exc:
        _session(early, late).refresh("t2", "t3", max_age, 2 * HOUR_MS, max_age)
    assert exc.value.code == "refresh_token_expired"


def test_a_spent_token_revokes_the_family() -> None:
    session = _session(SessionRefreshed(SESSION, USER, "t0", "t1", 10, HOUR_MS),
                       SessionRefreshed(SESSION, USER, "t1", "t2", 20, HOUR_MS))
    for spent in ("t0", "t1"):
        assert session.refresh(spent, "t3", 30, HOUR_MS) == SessionRevoked(
            SESSION, USER, "refresh_token_reuse", 30)
    revoked = _session(SessionRevoked(SESSION, USER, "refresh_token_reuse", 30))
    assert revoked.revoked
    with pytest.raises(Unauthenticated) as exc:
        revoked.refresh("t0", "t4", 40, HOUR_MS)
    assert exc.value.code == "session_revoked"


@pytest.mark.parametrize(("token", "now", "code"), [
    ("unknown", 10, "invalid_refresh_token"),
    ("t0", HOUR_MS, "refresh_token_expired"),
])
def test_refresh_refuses(token: str, now: int, code: str) -> None:
    with pytest.raises(Unauthenticated) as exc:
        _session().refresh(token, "t1", now, HOUR_MS)
    assert exc.value.code == code


def test_revoking_is_idempotent_and_only_for_the_owner() -> None:
    session = _session()
    event = session.revoke("logout", 5)
    assert event == SessionRevoked(SESSION, USER, "logout", 5)
    assert _session(event).revoke("logout", 6) is None
    assert check_session_owner(session, USER) is session
    for other in (uuid.UUID(int=3),):
        with pytest.raises(NotFound):
            check_session_owner(session, other)
    with pytest.raises(NotFound):
        check_session_owner(None, USER)
