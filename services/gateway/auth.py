"""Bearer access tokens: local JWT verification plus a cached revocation check.

Every request verifies the token locally (HS256 only — the algorithm is pinned,
so ``alg: none`` or an RSA/HMAC confusion cannot pass; ``sub``, ``sid`` and
``exp`` are required). Signature and expiry alone would let a signed-out or
deleted account act until its token expires, so the session is also checked
with identity (``VerifyToken``) and the answer cached per process for a few
seconds: revocation takes effect within ``revocation_cache_s`` everywhere
while the hot path stays local.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from kith.gateway.errors import ApiError, unauthenticated
from kith.gateway.schema import is_uuid

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    user_id: str
    session_id: str
    expires_at: int
    token: str


# Asks identity whether a verified token's session is still live; raises ApiError if not.
SessionCheck = Callable[[Principal], None]


class TokenVerifier:
    def __init__(self, secret: str, session_check: SessionCheck | None = None,
                 revocation_cache_s: float = 5.0, max_cached: int = 100_000) -> None:
        self._secret = secret
        self._session_check = session_check
        self._ttl = revocation_cache_s
        self._max = max_cached
        self._checked: dict[str, float] = {}  # token → monotonic time it was last confirmed
        self._decoded: dict[str, Principal] = {}  # token → its verified claims
        self._lock = threading.Lock()

    def decode(self, header: str | None) -> Principal | None:
        """The principal of a well-formed, validly signed, unexpired token; ``None`` otherwise."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        known = self._decoded.get(token)
        if known is not None:
            return known if known.expires_at > time.time() else None
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["sub", "sid", "exp"]})
        except jwt.PyJWTError:
            return None
        sub, sid, exp = claims.get("sub"), claims.get("sid"), claims.get("exp")
        if not (isinstance(sub, str) and is_uuid(sub) and isinstance(sid, str)
                and isinstance(exp, int)):
            return None
        principal = Principal(sub, sid, exp, token)
        with self._lock:
            if len(self._decoded) >= self._max:
                self._decoded.clear()
            self._decoded[token] = principal
        return principal

    def authenticate(self, header: str | None) -> Principal:
        """The caller, or a 401 in the public error shape."""
        principal = self.decode(header)
        if principal is None:
            raise unauthenticated("a valid bearer access token is required" if header
                                  else "missing Authorization: Bearer <access token>")
        self.confirm(principal)
        return principal

    def forget(self, principal: Principal) -> None:
        """Drop a cached confirmation (after signing out)."""
        with self._lock:
            self._checked.pop(principal.token, None)

    def confirmed_recently(self, principal: Principal) -> bool:
        """Whether :meth:`confirm` would answer from its cache (no call to identity)."""
        if self._session_check is None:
            return True
        with self._lock:
            seen = self._checked.get(principal.token)
        return seen is not None and time.monotonic() - seen < self._ttl

    def confirm(self, principal: Principal) -> None:
        """Raise a 401 ApiError if the principal's session has ended (cached per ``ttl``)."""
        if self._session_check is None:
            return
        now = time.monotonic()
        with self._lock:
            seen = self._checked.get(principal.token)
        if seen is not None and now - seen < self._ttl:
            return
        try:
            self._session_check(principal)
        except ApiError as exc:
            if exc.status == 401:
                self.forget(principal)
            raise
        with self._lock:
            if len(self._checked) >= self._max:
                self._checked.clear()
            self._checked[principal.token] = now
