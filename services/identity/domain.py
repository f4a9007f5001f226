"""The identity domain: value rules, the account and session aggregates and their events.

Events here carry plaintext; :mod:`kith.identity.events` encrypts the personal
fields on their way into the store. Nothing in this module does I/O.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from kith.common import text
from kith.common.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    check,
)

USERNAME = re.compile(r"[a-z0-9_]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 10, 1024
DISPLAY_NAME_MAX = 64
BIO_MAX = 500


# -- value rules -------------------------------------------------------------------------------

def _has_control(value: str, allowed: str = "") -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in value)


def username_problem(value: str) -> str | None:
    if not USERNAME.fullmatch(value):
        return "must be 3 to 32 characters of a-z, 0-9 and _"
    return None


def password_problem(value: str) -> str | None:
    if len(value) < PASSWORD_MIN:
        return f"must be at least {PASSWORD_MIN} characters"
    if len(value) > PASSWORD_MAX:
        return f"must be at most {PASSWORD_MAX} characters"
    return None


def display_name_problem(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    if len(value) > DISPLAY_NAME_MAX:
        return f"must be at most {DISPLAY_NAME_MAX} characters"
    if _has_control(value):
        return "must not contain control characters"
    return text.problem(value)


def bio_problem(value: str) -> str | None:
    if len(value) > BIO_MAX:
        return f"must be at most {BIO_MAX} characters"
    if _has_control(value, allowed="\n\t"):
        return "must not contain control characters other than newline and tab"
    return None


def check_fields(problems: Mapping[str, str | None]) -> None:
    """Raise one ``InvalidArgument`` naming every field that has a problem."""
    details = {name: why for name, why in problems.items() if why}
    check(not details, InvalidArgument(
        "invalid " + ", ".join(sorted(details)), details=details))


def check_registration(username: str, password: str, display_name: str, bio: str) -> None:
    check_fields({
        "username": username_problem(username),
        "password": password_problem(password),
        "display_name": display_name_problem(display_name),
        "bio": bio_problem(bio),
    })


def check_profile_change(display_name: str | None, bio: str | None) -> None:
    check_fields({
        "display_name": None if display_name is None else display_name_problem(display_name),
        "bio": None if bio is None else bio_problem(bio),
    })


# -- errors ------------------------------------------------------------------------------------

def username_taken() -> AlreadyExists:
    return AlreadyExists("this username is taken", code="username_taken",
                         details={"username": "taken"})


def invalid_credentials() -> Unauthenticated:
    return Unauthenticated("invalid username or password", code="invalid_credentials")


def account_not_found() -> NotFound:
    return NotFound("no such account", code="account_not_found")


def session_not_found() -> NotFound:
    return NotFound("no such session", code="session_not_found")


def session_ended() -> Unauthenticated:
    return Unauthenticated("the session has ended", code="session_revoked")


def invalid_refresh_token() -> Unauthenticated:
    return Unauthenticated("invalid refresh token", code="invalid_refresh_token")


def refresh_token_reused() -> Unauthenticated:
    return Unauthenticated("refresh token already used: the session is revoked",
                           code="refresh_token_reused")


# -- events ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountRegistered:
    user_id: uuid.UUID
    username: str
    display_name: str
    bio: str
    password_hash: str
    registered_at_ms: int


@dataclass(frozen=True)
class ProfileChanged:
    user_id: uuid.UUID
    display_name: str | None  # None: unchanged
    bio: str | None
    changed_at_ms: int


@dataclass(frozen=True)
class PasswordChanged:
    user_id: uuid.UUID
    password_hash: str
    changed_at_ms: int


@dataclass(frozen=True)
class AccountDeleted:
    user_id: uuid.UUID
    deleted_at_ms: int


@dataclass(frozen=True)
class SessionStarted:
    session_id: uuid.UUID
    user_id: uuid.UUID
    refresh_token_sha256: str
    started_at_ms: int
    expires_at_ms: int


@dataclass(frozen=True)
class SessionRefreshed:
    session_id: uuid.UUID
    user_id: uuid.UUID
    spent_token_sha256: str
    refresh_token_sha256: str
    refreshed_at_ms: int
    expires_at_ms: int


@dataclass(frozen=True)
class SessionRevoked:
    session_id: uuid.UUID
    user_id: uuid.UUID
    reason: str  # logout | refresh_token_reuse | password_changed | account_deleted
    revoked_at_ms: int


AccountEvent = AccountRegistered | ProfileChanged | PasswordChanged | AccountDeleted
SessionEvent = SessionStarted | SessionRefreshed | SessionRevoked
DomainEvent = AccountEvent | SessionEvent


# -- the account -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Account:
    """A user account as its events left it; ``version`` is the stream version."""

    user_id: uuid.UUID
    username: str
    display_name: str
    bio: str
    password_hash: str
    created_at_ms: int
    deleted: bool = False
    version: int = 0

    @classmethod
    def replay(cls, events: Iterable[AccountEvent]) -> Account | None:
        """The account after ``events`` (None for an empty stream)."""
        account: Account | None = None
        for event in events:
            account = _evolve_account(account, event)
        return account

    def change_profile(self, display_name: str | None, bio: str | None,
                       now_ms: int) -> ProfileChanged | None:
        """The change, or None when nothing would change."""
        check_active(self)
        check_profile_change(display_name, bio)
        name = None if display_name is None or display_name == self.display_name else display_name
        new_bio = None if bio is None or bio == self.bio else bio
        if name is None and new_bio is None:
            return None
        return ProfileChanged(self.user_id, name, new_bio, now_ms)

    def change_password(self, password_hash: str, now_ms: int) -> PasswordChanged:
        check_active(self)
        return PasswordChanged(self.user_id, password_hash, now_ms)

    def delete(self, now_ms: int) -> AccountDeleted:
        check_active(self)
        return AccountDeleted(self.user_id, now_ms)


def register(user_id: uuid.UUID, username: str, password: str, password_hash: str,
             display_name: str, bio: str, now_ms: int) -> AccountRegistered:
    """Decide a registration (``password`` is checked here, only its hash is kept)."""
    check_registration(username, password, display_name, bio)
    return AccountRegistered(user_id, username, display_name, bio, password_hash, now_ms)


def check_active(account: Account | None) -> Account:
    check(account is not None and not account.deleted, account_not_found())
    return account  # type: ignore[return-value]


def reauthentication_required() -> PermissionDenied:
    return PermissionDenied("confirm with your password to do this",
                            code="reauthentication_required",
                            details={"password": "missing or wrong"})


def check_password_matches(matches: bool) -> None:
    check(matches, PermissionDenied("the current password is wrong", code="wrong_password",
                                    details={"current_password": "wrong"}))


def _evolve_account(account: Account | None, event: AccountEvent) -> Account:
    match event:
        case AccountRegistered():
            return Account(event.user_id, event.username, event.display_name, event.bio,
                           event.password_hash, event.registered_at_ms, version=1)
    assert account is not None, f"{type(event).__name__} before AccountRegistered"
    account = replace(account, version=account.version + 1)
    match event:
        case ProfileChanged():
            return replace(
                account,
                display_name=account.display_name if event.display_name is None
                else event.display_name,
                bio=account.bio if event.bio is None else event.bio)
        case PasswordChanged():
            return replace(account, password_hash=event.password_hash)
        case AccountDeleted():
            return replace(account, deleted=True, username="", display_name="", bio="",
                           password_hash="")
    raise TypeError(f"not an account event: {event!r}")


# -- sessions ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    """A session family: one sign-in and the chain of refresh tokens rotated from it."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    current_token_sha256: str
    spent_tokens_sha256: frozenset[str]
    expires_at_ms: int
    revoked: bool = False
    version: int = 0
    started_at_ms: int = 0

    @classmethod
    def replay(cls, events: Iterable[SessionEvent]) -> Session | None:
        session: Session | None = None
        for event in events:
            session = _evolve_session(session, event)
        return session

    def refresh(self, presented_sha256: str, new_sha256: str, now_ms: int, ttl_ms: int,
                max_age_ms: int | None = None) -> SessionRefreshed | SessionRevoked:
        """Rotate the refresh token; a spent token revokes the family instead.

        Each rotation extends the family by ``ttl_ms``, but never beyond
        ``max_age_ms`` after the sign-in (an absolute lifetime: a stolen, kept
        rotating token dies with its family).

        The caller commits a ``SessionRevoked`` and then refuses the request
        (:func:`refresh_token_reused`).
        """
        check(not self.revoked, session_ended())
        if presented_sha256 in self.spent_tokens_sha256:
            return SessionRevoked(self.session_id, self.user_id, "refresh_token_reuse", now_ms)
        check(presented_sha256 == self.current_token_sha256, invalid_refresh_token())
        check(now_ms < self.expires_at_ms,
              Unauthenticated("the refresh token has expired", code="refresh_token_expired"))
        expires_at_ms = now_ms + ttl_ms
        if max_age_ms is not None:
            expires_at_ms = min(expires_at_ms, self.started_at_ms + max_age_ms)
        return SessionRefreshed(self.session_id, self.user_id, presented_sha256, new_sha256,
                                now_ms, expires_at_ms)

    def revoke(self, reason: str, now_ms: int) -> SessionRevoked | None:
        """End the family (None if it already ended: revoking is idempotent)."""
        if self.revoked:
            return None
        return SessionRevoked(self.session_id, self.user_id, reason, now_ms)


def start_session(session_id: uuid.UUID, user_id: uuid.UUID, token_sha256: str, now_ms: int,
                  ttl_ms: int) -> SessionStarted:
    return SessionStarted(session_id, user_id, token_sha256, now_ms, now_ms + ttl_ms)


def check_session_owner(session: Session | None, actor_id: uuid.UUID) -> Session:
    """Someone else's session is indistinguishable from a missing one."""
    check(session is not None and session.user_id == actor_id, session_not_found())
    return session  # type: ignore[return-value]


def _evolve_session(session: Session | None, event: SessionEvent) -> Session:
    match event:
        case SessionStarted():
            return Session(event.session_id, event.user_id, event.refresh_token_sha256,
                           frozenset(), event.expires_at_ms, version=1,
                           started_at_ms=event.started_at_ms)
    assert session is not None, f"{type(event).__name__} before SessionStarted"
    session = replace(session, version=session.version + 1)
    match event:
        case SessionRefreshed():
            return replace(session, current_token_sha256=event.refresh_token_sha256,
                           spent_tokens_sha256=session.spent_tokens_sha256
                           | {event.spent_token_sha256},
                           expires_at_ms=event.expires_at_ms)
        case SessionRevoked():
            return replace(session, revoked=True)
    raise TypeError(f"not a session event: {event!r}")
