"""``Idempotency-Key`` on POST: a retry returns the original response and performs nothing twice.

Protocol (per caller — the user id, or before sign-in ``anonymous:<client address>``, so
anonymous callers never share one key space):

1. **Claim first.** ``INSERT … ON CONFLICT DO NOTHING`` a row holding the
   request's fingerprint (method, path, body). Exactly one of several
   concurrent duplicates wins the insert; only the winner executes.
2. The winner stores the response (status, content type, body) — 2xx and 4xx
   alike, since a retry must see the same answer. 5xx/429 outcomes release the
   claim instead, so the retry really retries.
3. A loser (or a later retry) finds the row: same fingerprint and finished →
   the stored response is replayed (``Idempotent-Replayed: true``); same
   fingerprint, still running → 409 ``idempotency_in_progress`` with
   ``Retry-After``; different fingerprint → 422 ``idempotency_key_reused``.

The gateway's claim alone cannot tell a request that failed from one whose answer
was lost (a deadline that expired while the service went on and committed): a
5xx releases the claim and the retry runs again. So the request also carries a
**command id** derived from the key (:meth:`IdempotencyStore.command_id`, a UUID
from a keyed MAC of caller and key) to every service it calls
(``x-kith-command-id``, :mod:`kith.common.rpc`); a service's creating commands
record it with their events and answer a repeat with the first result
(:mod:`kith.common.commands`), so the retry returns the same resource.

Keys live ``ttl_s`` (default 24 h). An unfinished claim is **never** taken
over before then: its process may have died after the service committed, so
running the request again could perform it twice. Until the key expires such a
claim answers 409 (after ``stale_claim_s`` with a ``Retry-After`` up to its
expiry and a hint to use a new key).

What is kept is minimal: the fingerprint is an HMAC under the idempotency
secret (a bare hash of a sign-in body would be a password-equivalent), stored
bodies are sealed with AES-GCM under a key from the same secret, and a response
that carries session tokens (``secret=True``: sign-in, refresh) is never kept at
all — its replay answers 409 ``idempotency_key_spent`` and hands out nothing, so
a captured refresh request cannot be replayed into a working token pair.
Expired rows are purged on a schedule (:meth:`IdempotencyStore.purge_expired`)
and a user's rows when their account is deleted (:meth:`forget`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import uuid
from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Response
from psycopg_pool import ConnectionPool

from kith.common.logs import command_id
from kith.gateway.errors import ApiError, error_response, invalid

COMMAND_IDS = uuid.UUID("0d7c4b6e-2f1a-5c3e-9b8d-6a5f4e3d2c1b")  # namespace of command ids
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADERS = ("Content-Type", "Location")
WITHHELD_HEADER = "x-kith-withheld"  # marks a record whose (secret) body was not kept


class Renderable(Protocol):
    def to_response(self) -> Response: ...


Execute = Callable[[], "Response | Renderable"]


class IdempotencyStore:
    def __init__(self, pool: ConnectionPool, secret: str, ttl_s: int = 24 * 3600,
                 stale_claim_s: int = 60) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._stale_claim_s = stale_claim_s
        self._aead = AESGCM(HKDF(hashes.SHA256(), 32, salt=None,
                                 info=b"kith-gateway-idempotency").derive(secret.encode()))
        self._mac_key = HKDF(hashes.SHA256(), 32, salt=None,
                             info=b"kith-gateway-idempotency-fingerprint").derive(secret.encode())

    def fingerprint(self, method: str, path: str, body: bytes) -> bytes:
        """A keyed MAC of the request (never a bare hash: bodies may carry passwords)."""
        return hmac.new(self._mac_key, b"\n".join([method.encode(), path.encode(), body]),
                        hashlib.sha256).digest()

    def command_id(self, scope: str, key: str) -> str:
        """The command id the services see for ``(scope, key)``: stable across retries,
        unguessable without the secret, different for every caller."""
        mac = hmac.new(self._mac_key, f"command\n{scope}\n{key}".encode(), hashlib.sha256)
        return str(uuid.uuid5(COMMAND_IDS, mac.hexdigest()))

    def run(self, scope: str, key: str, method: str, path: str, body: bytes,
            execute: Execute, secret: bool = False) -> Response:
        """Run ``execute`` once per ``(scope, key)``; ``secret``: its response carries
        credentials and is never stored (a replay gets 409 ``idempotency_key_spent``)."""
        if not KEY_PATTERN.match(key):
            raise invalid({"Idempotency-Key": "must be 1-255 visible ASCII characters"})
        fingerprint = self.fingerprint(method, path, body)
        if not self._claim(scope, key, fingerprint):
            return self._existing(scope, key, fingerprint)
        token = command_id.set(self.command_id(scope, key))
        try:
            outcome = execute()
            response = outcome if isinstance(outcome, Response) else outcome.to_response()
        except ApiError as exc:
            response = exc.response()
        except BaseException:
            self._release(scope, key)
            raise
        finally:
            command_id.reset(token)
        if response.status_code >= 500 or response.status_code == 429:
            self._release(scope, key)
        else:
            self._store(scope, key, response, keep_body=not (secret and response.status_code < 300))
        return response

    def forget(self, scope: str) -> int:
        """Delete every record of ``scope`` (a deleted account's user id)."""
        with self._pool.connection() as conn:
            return conn.execute("DELETE FROM idempotency_keys WHERE scope = %s",
                                (scope,)).rowcount

    def purge_expired(self, batch: int = 5000) -> int:
        """Delete expired records (in batches, so the table is never locked for long)."""
        total = 0
        while True:
            with self._pool.connection() as conn:
                deleted = conn.execute(
                    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
                    " SELECT ctid FROM idempotency_keys"
                    " WHERE created_at < now() - make_interval(secs => %s) LIMIT %s))",
                    (self._ttl_s, batch)).rowcount
            total += deleted
            if deleted < batch:
                return total

    # -- storage -----------------------------------------------------------------------------

    def _claim(self, scope: str, key: str, fingerprint: bytes) -> bool:
        with self._pool.connection() as conn:
            won = conn.execute(
                "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1", (scope, key, fingerprint)).fetchone()
            if won:
                return True
            # An expired key is taken over by whoever updates it first. An unfinished claim
            # is not (before it expires): its request may have been performed already.
            taken = conn.execute(
                "UPDATE idempotency_keys SET fingerprint = %s, status = NULL, headers = NULL,"
                " body = NULL, created_at = now()"
                " WHERE scope = %s AND key = %s"
                "   AND created_at < now() - make_interval(secs => %s)"
                " RETURNING 1", (fingerprint, scope, key, self._ttl_s)).fetchone()
            return bool(taken)

    def _existing(self, scope: str, key: str, fingerprint: bytes) -> Response:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT fingerprint, status, headers, body,"
                " extract(epoch FROM now() - created_at)::float8 FROM idempotency_keys"
                " WHERE scope = %s AND key = %s", (scope, key)).fetchone()
        if row is None:  # released between our insert attempt and this read
            return self._in_progress(0.0)
        stored_fp, status, headers, sealed, age_s = row
        if bytes(stored_fp) != fingerprint:
            return error_response(422, "idempotency_key_reused",
                                  "this Idempotency-Key was used with a different request",
                                  {"Idempotency-Key": "already used for another request"})
        if status is None:
            return self._in_progress(age_s)
        if (headers or {}).get(WITHHELD_HEADER):
            return error_response(
                409, "idempotency_key_spent",
                "the response to this request carried session tokens, which are never kept;"
                " sign in again (or refresh with your current refresh token)",
                {"Idempotency-Key": "already used"})
        body = self._open(scope, key, bytes(sealed)) if sealed else b""
        return Response(body or None, status=status,
                        headers={**(headers or {}), "Idempotent-Replayed": "true"})

    def _in_progress(self, age_s: float) -> Response:
        if age_s < self._stale_claim_s:
            return error_response(409, "idempotency_in_progress",
                                  "a request with this Idempotency-Key is being processed",
                                  headers={"Retry-After": "1"})
        # Most likely its process died; whether it took effect is unknown, so it is not re-run.
        expires_in = max(1, math.ceil(self._ttl_s - age_s))
        return error_response(
            409, "idempotency_in_progress",
            "the request with this Idempotency-Key did not finish and may or may not have"
            " taken effect; check, then use a new key",
            {"Idempotency-Key": f"blocked until it expires in {expires_in} s"},
            headers={"Retry-After": str(expires_in)})

    def _store(self, scope: str, key: str, response: Response, keep_body: bool = True) -> None:
        body = response.get_data() if keep_body else b""
        headers = {name: value for name, value in response.headers.items()
                   if name in REPLAYED_HEADERS}
        if not keep_body:
            headers[WITHHELD_HEADER] = "1"
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET status = %s, headers = %s, body = %s"
                " WHERE scope = %s AND key = %s",
                (response.status_code, json.dumps(headers),
                 self._seal(scope, key, body) if body else None, scope, key))

    def _release(self, scope: str, key: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE scope = %s AND key = %s AND"
                         " status IS NULL", (scope, key))

    def _seal(self, scope: str, key: str, body: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, body, f"{scope}\n{key}".encode())

    def _open(self, scope: str, key: str, sealed: bytes) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], f"{scope}\n{key}".encode())
