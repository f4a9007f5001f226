"""Access tokens (JWT, HS256 pinned) and refresh tokens (random, kept only as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import jwt

from kith.common.errors import Unauthenticated

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "sid", "exp", "iat", "jti")


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at_s: int


class AccessTokens:
    """Issues and checks signed access tokens: ``sub`` user, ``sid`` session family."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID, now_s: int) -> str:
        return jwt.encode({"sub": str(user_id), "sid": str(session_id), "iat": now_s,
                           "exp": now_s + self.ttl_s, "jti": uuid.uuid4().hex},
                          self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        """The claims of a well-signed, unexpired token; ``Unauthenticated`` otherwise."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": list(REQUIRED_CLAIMS)})
            return AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]),
                                int(claims["exp"]))
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired", code="token_expired") from None
        except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError):
            raise Unauthenticated("invalid access token", code="invalid_token") from None


def new_refresh_token(family: str | None = None) -> str:
    """``<family>.<secret>``: 256 random bits, URL-safe, after the family's tag.

    The tag (96 random bits, the same for every token rotated from one sign-in)
    lets the gateway rate-limit refreshes per session family without knowing
    anything else about it.
    """
    return f"{family or secrets.token_urlsafe(12)}.{secrets.token_urlsafe(32)}"


def family_of(token: str) -> str | None:
    """The family tag of a refresh token (``None`` for tokens issued without one)."""
    family, dot, _ = token.partition(".")
    return family if dot and 8 <= len(family) <= 32 else None


def refresh_token_sha256(token: str) -> str:
    """What is stored of a refresh token: its SHA-256, hex (tokens are random, so no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()
