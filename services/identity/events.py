"""Event type names and the domain ↔ Avro mapping, which seals the personal fields.

Username, display name, bio and password hash are stored as ``enc:v1:``
ciphertexts under the user's data key (:mod:`kith.common.crypto`); everything
else (ids, times, refresh-token hashes, revocation reasons) is plaintext.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kith.common import crypto
from kith.common.eventstore import NewEvent
from kith.identity.domain import (
    AccountDeleted,
    AccountEvent,
    AccountRegistered,
    DomainEvent,
    PasswordChanged,
    ProfileChanged,
    SessionEvent,
    SessionRefreshed,
    SessionRevoked,
    SessionStarted,
)

ACCOUNT_REGISTERED = "kith.identity.AccountRegistered"
PROFILE_CHANGED = "kith.identity.ProfileChanged"
PASSWORD_CHANGED = "kith.identity.PasswordChanged"
ACCOUNT_DELETED = "kith.identity.AccountDeleted"
SESSION_STARTED = "kith.identity.SessionStarted"
SESSION_REFRESHED = "kith.identity.SessionRefreshed"
SESSION_REVOKED = "kith.identity.SessionRevoked"

ACCOUNT_TYPES = (ACCOUNT_REGISTERED, PROFILE_CHANGED, PASSWORD_CHANGED, ACCOUNT_DELETED)
SESSION_TYPES = (SESSION_STARTED, SESSION_REFRESHED, SESSION_REVOKED)


@dataclass(frozen=True)
class Cipher:
    """Seals and opens one user's personal fields with that user's data key."""

    key: bytes
    user_id: uuid.UUID

    def seal(self, value: str) -> str:
        return crypto.encrypt(self.key, str(self.user_id), value)

    def open(self, value: str) -> str:
        """Raises :class:`kith.common.crypto.ShreddedError` if the key does not fit."""
        return crypto.decrypt(self.key, str(self.user_id), value)


def to_new_event(event: DomainEvent, cipher: Cipher | None = None) -> NewEvent:
    """The storable form of ``event``; account events with personal data need ``cipher``."""
    match event:
        case AccountRegistered():
            cipher = _required(cipher)
            return NewEvent(ACCOUNT_REGISTERED, {
                "user_id": str(event.user_id),
                "username": cipher.seal(event.username),
                "display_name": cipher.seal(event.display_name),
                "bio": cipher.seal(event.bio),
                "password_hash": cipher.seal(event.password_hash),
                "registered_at_ms": event.registered_at_ms,
            })
        case ProfileChanged():
            cipher = _required(cipher)
            return NewEvent(PROFILE_CHANGED, {
                "user_id": str(event.user_id),
                "display_name": None if event.display_name is None
                else cipher.seal(event.display_name),
                "bio": None if event.bio is None else cipher.seal(event.bio),
                "changed_at_ms": event.changed_at_ms,
            })
        case PasswordChanged():
            cipher = _required(cipher)
            return NewEvent(PASSWORD_CHANGED, {
                "user_id": str(event.user_id),
                "password_hash": cipher.seal(event.password_hash),
                "changed_at_ms": event.changed_at_ms,
            })
        case AccountDeleted():
            return NewEvent(ACCOUNT_DELETED, {"user_id": str(event.user_id),
                                              "deleted_at_ms": event.deleted_at_ms})
        case SessionStarted():
            return NewEvent(SESSION_STARTED, {
                "session_id": str(event.session_id), "user_id": str(event.user_id),
                "refresh_token_sha256": event.refresh_token_sha256,
                "started_at_ms": event.started_at_ms, "expires_at_ms": event.expires_at_ms,
            })
        case SessionRefreshed():
            return NewEvent(SESSION_REFRESHED, {
                "session_id": str(event.session_id), "user_id": str(event.user_id),
                "spent_token_sha256": event.spent_token_sha256,
                "refresh_token_sha256": event.refresh_token_sha256,
                "refreshed_at_ms": event.refreshed_at_ms, "expires_at_ms": event.expires_at_ms,
            })
        case SessionRevoked():
            return NewEvent(SESSION_REVOKED, {
                "session_id": str(event.session_id), "user_id": str(event.user_id),
                "reason": event.reason, "revoked_at_ms": event.revoked_at_ms,
            })
    raise TypeError(f"not an identity event: {event!r}")


def _required(cipher: Cipher | None) -> Cipher:
    if cipher is None:
        raise ValueError("an event with personal data needs the user's cipher")
    return cipher


def account_event(event_type: str, data: dict[str, Any], cipher: Cipher) -> AccountEvent:
    """The domain form of a stored account event, its personal fields opened with ``cipher``."""
    user_id = uuid.UUID(data["user_id"])
    if event_type == ACCOUNT_REGISTERED:
        return AccountRegistered(user_id, cipher.open(data["username"]),
                                 cipher.open(data["display_name"]), cipher.open(data["bio"]),
                                 cipher.open(data["password_hash"]), data["registered_at_ms"])
    if event_type == PROFILE_CHANGED:
        name, bio = data["display_name"], data["bio"]
        return ProfileChanged(user_id, None if name is None else cipher.open(name),
                              None if bio is None else cipher.open(bio), data["changed_at_ms"])
    if event_type == PASSWORD_CHANGED:
        return PasswordChanged(user_id, cipher.open(data["password_hash"]),
                               data["changed_at_ms"])
    if event_type == ACCOUNT_DELETED:
        return AccountDeleted(user_id, data["deleted_at_ms"])
    raise TypeError(f"not an account event type: {event_type}")


def session_event(event_type: str, data: dict[str, Any]) -> SessionEvent:
    session_id, user_id = uuid.UUID(data["session_id"]), uuid.UUID(data["user_id"])
    if event_type == SESSION_STARTED:
        return SessionStarted(session_id, user_id, data["refresh_token_sha256"],
                              data["started_at_ms"], data["expires_at_ms"])
    if event_type == SESSION_REFRESHED:
        return SessionRefreshed(session_id, user_id, data["spent_token_sha256"],
                                data["refresh_token_sha256"], data["refreshed_at_ms"],
                                data["expires_at_ms"])
    if event_type == SESSION_REVOKED:
        return SessionRevoked(session_id, user_id, data["reason"], data["revoked_at_ms"])
    raise TypeError(f"not a session event type: {event_type}")
