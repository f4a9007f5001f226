"""Single-use stream tickets, so a browser's ``EventSource`` (no headers) can open ``/v1/stream``.

``POST /v1/stream/tickets`` seals the caller's access token and an expiry with
AES-GCM under a key derived from the JWT secret; the ticket itself carries
everything, so any gateway process can redeem it. Redeeming records the
ticket's digest in ``stream_tickets_spent`` (shared by every process), which
makes it single use; an expired, forged, reused or malformed ticket is a 401.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg_pool import ConnectionPool

from kith.gateway.auth import Principal, TokenVerifier
from kith.gateway.errors import ApiError

TICKET_TTL_S = 60
AAD = b"kith stream ticket v1"


def _invalid() -> ApiError:
    return ApiError(401, "unauthenticated",
                    "this stream ticket is not valid (expired or already used); get a new one")


class StreamTickets:
    def __init__(self, pool: ConnectionPool, secret: str, verifier: TokenVerifier,
                 ttl_s: int = TICKET_TTL_S) -> None:
        self._pool = pool
        self._verifier = verifier
        self.ttl_s = ttl_s
        self._aead = AESGCM(HKDF(hashes.SHA256(), 32, salt=None,
                                 info=b"kith gateway stream tickets").derive(secret.encode()))

    def issue(self, principal: Principal) -> str:
        """A ticket for ``principal``, valid once within ``ttl_s`` seconds."""
        payload = json.dumps({"t": principal.token, "e": int(time.time()) + self.ttl_s}).encode()
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, payload, AAD)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def redeem(self, ticket: str) -> Principal:
        """The principal a valid, unused, unexpired ticket was issued to; else a 401."""
        try:
            sealed = base64.urlsafe_b64decode(ticket + "=" * (-len(ticket) % 4))
            payload = json.loads(self._aead.decrypt(sealed[:12], sealed[12:], AAD))
            token, expires = str(payload["t"]), int(payload["e"])
        except (ValueError, TypeError, KeyError, InvalidTag):
            raise _invalid() from None
        if expires <= time.time():
            raise _invalid()
        digest = hashlib.sha256(sealed).digest()
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM stream_tickets_spent WHERE expires_at < now()")
            spent = conn.execute(
                "INSERT INTO stream_tickets_spent (digest, expires_at) "
                "VALUES (%s, to_timestamp(%s)) ON CONFLICT DO NOTHING RETURNING 1",
                (digest, expires)).fetchone()
        if spent is None:
            raise _invalid()
        principal = self._verifier.decode(f"Bearer {token}")
        if principal is None:  # the access token expired in the meantime
            raise _invalid()
        self._verifier.confirm(principal)
        return principal
