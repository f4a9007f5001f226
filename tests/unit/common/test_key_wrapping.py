"""Data keys are stored wrapped under a key-encryption key that never sits in the database.

A wrapped key opens only under its KEK and only for its own row; an older KEK keeps
opening what it wrapped while a rotation runs; a key that cannot be opened is a loud
configuration fault, never a key that looks shredded.
"""

from __future__ import annotations

import base64
import os

import pytest

from kith.common import crypto
from kith.common.config import ConfigError, Settings
from kith.common.crypto import Keyring, KeyTable, KeyUnavailable

POSTS = KeyTable("post", "author_keys")
ANN = "0b8f7a4e-3c1d-4e55-9a51-1f7e0f6c2d11"
BEA = "6f0c3a9e-8b2a-4f0e-b7f4-2d9b9f1c0e22"


def kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_a_wrapped_key_opens_only_under_its_kek_and_for_its_own_row() -> None:
    ring = Keyring.parse(f"k1:{kek()}")
    data_key = crypto.new_key()
    stored = ring.wrap(data_key, POSTS.subject(ANN))
    assert data_key not in stored and stored.startswith(crypto.WRAPPED)
    assert ring.unwrap(stored, POSTS.subject(ANN)) == data_key
    with pytest.raises(KeyUnavailable, match="wrong KEK or a tampered row"):
        ring.unwrap(stored, POSTS.subject(BEA))  # moved to another person's row
    with pytest.raises(KeyUnavailable, match="not in KITH_KEY_ENCRYPTION_KEYS"):
        Keyring.parse(f"k2:{kek()}").unwrap(stored, POSTS.subject(ANN))
    with pytest.raises(KeyUnavailable, match="wrong KEK"):
        Keyring.parse(f"k1:{kek()}").unwrap(stored, POSTS.subject(ANN))  # same id, other key


def test_a_row_is_bound_to_its_id_however_the_id_is_spelled() -> None:
    assert POSTS.subject(ANN.upper()) == POSTS.subject(ANN) == f"post/author_keys/{ANN}"


def test_a_rotation_opens_old_rows_and_wraps_new_ones_under_the_new_kek() -> None:
    old, new = kek(), kek()
    before = Keyring.parse(f"old:{old}")
    during = Keyring.parse(f"new:{new},old:{old}")
    data_key = crypto.new_key()
    stored = before.wrap(data_key, "s")
    assert during.unwrap(stored, "s") == data_key
    assert not during.is_current(stored)
    rewrapped = during.wrap(during.unwrap(stored, "s"), "s")
    assert during.is_current(rewrapped)
    assert Keyring.parse(f"new:{new}").unwrap(rewrapped, "s") == data_key


def test_a_key_stored_before_wrapping_is_read_only_when_allowed() -> None:
    raw = crypto.new_key()
    with pytest.raises(KeyUnavailable, match="kith keys wrap"):
        Keyring.parse(f"k:{kek()}").unwrap(raw, "s")
    assert Keyring.parse(f"k:{kek()}", accept_unwrapped=True).unwrap(raw, "s") == raw


@pytest.mark.parametrize(("spec", "why"), [
    ("k1", "id:base64key"),
    ("k1:not base64!", "not valid base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "32 bytes"),
    (f":{kek()}", "1 to 255 bytes"),
])
def test_a_malformed_keyring_is_refused(spec: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Keyring.parse(spec)


def test_outside_development_a_real_kek_is_required() -> None:
    with pytest.raises(ConfigError, match="must be set outside development"):
        Settings.from_env({"KITH_ENV": "production"}).keyring()
    development_kek = base64.b64encode(crypto.DEVELOPMENT_KEK).decode()
    with pytest.raises(ConfigError, match="development KEK"):
        Settings.from_env({"KITH_ENV": "production",
                           "KITH_KEY_ENCRYPTION_KEYS": f"x:{development_kek}"}).keyring()
    with pytest.raises(ConfigError, match="KITH_KEY_ENCRYPTION_KEYS"):
        Settings.from_env({"KITH_ENV": "production",
                           "KITH_KEY_ENCRYPTION_KEYS": "nope"}).keyring()
    ring = Settings.from_env({"KITH_ENV": "production",
                              "KITH_KEY_ENCRYPTION_KEYS": f"k:{kek()}"}).keyring()
    assert ring.current == "k" and not ring.accept_unwrapped
    migrating = Settings.from_env({"KITH_ENV": "production", "KITH_KEY_ENCRYPTION_KEYS":
                                   f"k:{kek()}", "KITH_KEYS_ACCEPT_UNWRAPPED": "true"})
    assert migrating.keyring().accept_unwrapped
    assert Settings.from_env({}).keyring().is_development  # development: the fixed KEK
