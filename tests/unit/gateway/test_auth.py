import time
import uuid

import jwt
import pytest

from kith.gateway.auth import Principal, TokenVerifier
from kith.gateway.errors import ApiError

SECRET = "unit-test-secret-" * 4  # long enough for HS512 too (the pinning test)


def token(secret: str = SECRET, alg: str = "HS256", **claims: object) -> str:
    base = {"sub": str(uuid.uuid4()), "sid": "s1", "exp": int(time.time()) + 60}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, secret, algorithm=alg)


def test_valid_token_yields_the_principal() -> None:
    user = str(uuid.uuid4())
    principal = TokenVerifier(SECRET).authenticate(f"Bearer {token(sub=user)}")
    assert principal.user_id == user and principal.session_id == "s1"


@pytest.mark.parametrize("header", [
    None, "", "Basic abc", "Bearer", "Bearer not-a-jwt",
    f"Bearer {token(secret='another-secret-' * 5)}",
    f"Bearer {token(exp=int(time.time()) - 5)}",
    f"Bearer {token(sid=None)}", f"Bearer {token(sub='not-a-uuid')}",
    f"Bearer {token(alg='HS512')}",
    "Bearer " + jwt.encode({"sub": str(uuid.uuid4()), "sid": "s", "exp": 2**40}, None,
                           algorithm="none"),
])
def test_anything_else_is_401(header: str | None) -> None:
    with pytest.raises(ApiError) as err:
        TokenVerifier(SECRET).authenticate(header)
    assert err.value.status == 401 and err.value.headers["WWW-Authenticate"] == "Bearer"


def test_session_check_is_cached_and_revocation_is_seen_after_forget() -> None:
    calls: list[str] = []
    revoked: set[str] = set()

    def check(p: Principal) -> None:
        calls.append(p.session_id)
        if p.session_id in revoked:
            raise ApiError(401, "unauthenticated", "revoked")

    verifier = TokenVerifier(SECRET, check, revocation_cache_s=60)
    header = f"Bearer {token()}"
    principal = verifier.authenticate(header)
    verifier.authenticate(header)
    assert calls == ["s1"]
    revoked.add("s1")
    verifier.forget(principal)
    with pytest.raises(ApiError):
        verifier.authenticate(header)
