"""Access tokens, refresh-token hashing and argon2id configuration."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from kith.common.config import ConfigError
from kith.common.errors import Unauthenticated
from kith.identity.passwords import Argon2Params, Passwords
from kith.identity.tokens import AccessTokens, new_refresh_token, refresh_token_sha256

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
USER, SESSION = uuid.uuid4(), uuid.uuid4()
CHEAP = Argon2Params(time_cost=1, memory_kib=8, parallelism=1)


def test_access_tokens_carry_user_session_and_expiry() -> None:
    tokens, now = AccessTokens(SECRET, ttl_s=900), int(time.time())
    token = tokens.issue(USER, SESSION, now_s=now)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    # The token names the session by its handle, never by the id its events carry.
    assert claims["sub"] == str(USER) and claims["sid"] == str(tokens.handles.public(SESSION))
    assert claims["sid"] != str(SESSION)
    assert claims["exp"] - claims["iat"] == 900 and len(claims["jti"]) == 32
    assert tokens.issue(USER, SESSION, now) != token, "every token has its own jti"
    verified = tokens.verify(token)
    assert (verified.user_id, verified.session_id, verified.expires_at_s) == (
        USER, SESSION, now + 900)


def test_expired_and_foreign_tokens_are_refused() -> None:
    tokens = AccessTokens(SECRET, ttl_s=60)
    with pytest.raises(Unauthenticated) as exc:
        tokens.verify(tokens.issue(USER, SESSION, now_s=1_000))
    assert exc.value.code == "token_expired"
    other = AccessTokens(SECRET + "x", ttl_s=60).issue(USER, SESSION, int(time.time()))
    for token in (other, "", "a.b.c"):
        with pytest.raises(Unauthenticated) as exc:
            tokens.verify(token)
        assert exc.value.code == "invalid_token"


def test_refresh_tokens_are_random_and_stored_as_sha256() -> None:
    token = new_refresh_token()
    assert len(token) >= 43 and token != new_refresh_token()
    digest = refresh_token_sha256(token)
    assert len(digest) == 64 and digest == refresh_token_sha256(token)
    assert token not in digest


def test_argon2_parameters_come_from_the_environment() -> None:
    assert Argon2Params.from_env({}) == Argon2Params(3, 65536, 4)
    assert Argon2Params.from_env({"KITH_ARGON2_TIME_COST": "2", "KITH_ARGON2_MEMORY_KIB": "16",
                                  "KITH_ARGON2_PARALLELISM": "2"}) == Argon2Params(2, 16, 2)
    for bad in ({"KITH_ARGON2_TIME_COST": "x"}, {"KITH_ARGON2_TIME_COST": "0"},
                {"KITH_ARGON2_MEMORY_KIB": "8", "KITH_ARGON2_PARALLELISM": "2"}):
        with pytest.raises(ConfigError):
            Argon2Params.from_env(bad)


def test_passwords_are_argon2id_hashes_that_verify() -> None:
    passwords = Passwords(CHEAP)
    hashed = passwords.hash("a long password")
    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert passwords.hash("a long password") != hashed, "salted"
    assert passwords.verify(hashed, "a long password")
    assert not passwords.verify(hashed, "a long passwort")
    assert not passwords.verify("not a hash", "a long password")
    passwords.burn("anything")  # costs a verification, decides nothing
