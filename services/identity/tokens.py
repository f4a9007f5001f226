"""Access tokens (JWT, HS256 pinned) and refresh tokens (random, kept only as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kith.common.errors import Unauthenticated

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "sid", "exp", "iat", "jti")


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at_s: int


class SessionHandles:
    """The public name of a session family, unlinkable to its event stream without the key.

    A session's events (``identity.events.v1``, exported to analysts) are keyed by
    its internal id; clients, access tokens and the gateway only ever see the
    handle — that id encrypted as one AES block under a key derived from the JWT
    secret (a keyed bijection, so no lookup table is needed).
    """

    def __init__(self, secret: str) -> None:
        key = HKDF(hashes.SHA256(), 32, salt=None,
                   info=b"kith-identity-session-handle").derive(secret.encode())
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())  # one block, a PRP

    def public(self, session_id: uuid.UUID) -> uuid.UUID:
        encryptor = self._cipher.encryptor()
        return uuid.UUID(bytes=encryptor.update(session_id.bytes) + encryptor.finalize())

    def internal(self, handle: uuid.UUID) -> uuid.UUID:
        decryptor = self._cipher.decryptor()
        return uuid.UUID(bytes=decryptor.update(handle.bytes) + decryptor.finalize())


class AccessTokens:
    """Issues and checks signed access tokens: ``sub`` user, ``sid`` session family (its
    public handle; :attr:`AccessClaims.session_id` is the internal id)."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self.handles = SessionHandles(secret)

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID, now_s: int) -> str:
        sid = self.handles.public(session_id)
        return jwt.encode({"sub": str(user_id), "sid": str(sid), "iat": now_s,
                           "exp": now_s + self.ttl_s, "jti": uuid.uuid4().hex},
                          self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        """The claims of a well-signed, unexpired token; ``Unauthenticated`` otherwise."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": list(REQUIRED_CLAIMS)})
            return AccessClaims(uuid.UUID(claims["sub"]),
                                self.handles.internal(uuid.UUID(claims["sid"])),
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
