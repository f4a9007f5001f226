"""Identity events through Avro: personal fields sealed, everything round-trips."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from kith.common import crypto
from kith.common.codec import AvroCodec
from kith.identity.domain import (
    AccountDeleted,
    AccountRegistered,
    DomainEvent,
    PasswordChanged,
    ProfileChanged,
    SessionRefreshed,
    SessionRevoked,
    SessionStarted,
)
from kith.identity.events import (
    ACCOUNT_TYPES,
    SESSION_TYPES,
    Cipher,
    account_event,
    session_event,
    to_new_event,
)

USER, SESSION = uuid.uuid4(), uuid.uuid4()
CIPHER = Cipher(crypto.new_key(), USER)
SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "identity"
ACCOUNT_EVENTS: list[DomainEvent] = [
    AccountRegistered(USER, "quinn_q", "Quinn Q.", "likes kites", "$argon2id$v=19$hash", 1),
    ProfileChanged(USER, "Quinn", None, 2),
    ProfileChanged(USER, None, "", 3),
    PasswordChanged(USER, "$argon2id$v=19$other", 4),
    AccountDeleted(USER, 5),
]
SESSION_EVENTS: list[DomainEvent] = [
    SessionStarted(SESSION, USER, "a" * 64, 1, 2),
    SessionRefreshed(SESSION, USER, "a" * 64, "b" * 64, 3, 4),
    SessionRevoked(SESSION, USER, "logout", 5),
]
codec = AvroCodec()


@pytest.mark.parametrize("event", ACCOUNT_EVENTS + SESSION_EVENTS,
                         ids=lambda e: type(e).__name__)
def test_events_round_trip_through_avro(event: DomainEvent) -> None:
    new = to_new_event(event, CIPHER)
    event_type, data = codec.decode(codec.encode(new.type, new.data))
    assert event_type == new.type
    back = (account_event(event_type, data, CIPHER) if event_type in ACCOUNT_TYPES
            else session_event(event_type, data))
    assert back == event


def test_personal_fields_are_sealed_under_the_users_key() -> None:
    registered = to_new_event(ACCOUNT_EVENTS[0], CIPHER)
    payload = codec.encode(registered.type, registered.data)
    for secret in ("quinn_q", "Quinn Q.", "likes kites", "$argon2id$"):
        assert secret.encode() not in payload
    for field in ("username", "display_name", "bio", "password_hash"):
        assert crypto.is_encrypted(registered.data[field])
    other_user = Cipher(CIPHER.key, uuid.uuid4())  # bound to the subject: cannot be moved
    for cipher in (Cipher(crypto.new_key(), USER), other_user):
        with pytest.raises(crypto.ShreddedError):
            account_event(registered.type, registered.data, cipher)


def test_personal_data_needs_a_cipher() -> None:
    with pytest.raises(ValueError):
        to_new_event(ACCOUNT_EVENTS[0])
    assert to_new_event(AccountDeleted(USER, 1)).data == {"user_id": str(USER),
                                                          "deleted_at_ms": 1}


def test_account_deleted_carries_only_the_user_id_and_time() -> None:
    schema = json.loads((SCHEMAS / "AccountDeleted.v1.avsc").read_text())
    assert schema["namespace"] == "kith.identity"
    assert {f["name"]: f["type"] for f in schema["fields"]} == {"user_id": "string",
                                                                "deleted_at_ms": "long"}


def test_every_event_type_has_a_schema() -> None:
    names = set(codec.registry.names())
    assert set(ACCOUNT_TYPES) | set(SESSION_TYPES) <= names
    assert {p.name.split(".")[0] for p in SCHEMAS.glob("*.avsc")} == {
        t.rsplit(".", 1)[1] for t in (*ACCOUNT_TYPES, *SESSION_TYPES)}
