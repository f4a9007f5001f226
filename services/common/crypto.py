"""Field encryption for personal data inside immutable events (crypto-shredding).

Each data subject (a user, a conversation) has a 256-bit data key held by the
service that owns it. Personal fields are stored in events as
``AES-256-GCM(key, plaintext)`` with a random nonce; destroying the key makes
every copy — the event table, the Kafka topic, exports — unreadable for good.
The subject id is bound as associated data, so a ciphertext cannot be moved
to another subject.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"


class ShreddedError(LookupError):
    """The data key is gone (or wrong): the value can never be read again."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt(key: bytes, subject_id: str, plaintext: str) -> str:
    """``enc:v1:<base64(nonce || ciphertext+tag)>``."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), subject_id.encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def decrypt(key: bytes | None, subject_id: str, token: str) -> str:
    if not token.startswith(PREFIX):
        raise ValueError("not an encrypted field")
    if key is None:
        raise ShreddedError(subject_id)
    raw = base64.b64decode(token[len(PREFIX):])
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], subject_id.encode()).decode()
    except InvalidTag:
        raise ShreddedError(subject_id) from None


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)
