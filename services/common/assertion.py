"""Signed actor assertions: the acting user as a verified fact inside the cluster.

The gateway authenticates the caller and signs a short-lived assertion
``v1.<actor>.<expires_at_s>.<signature>`` with its Ed25519 private key
(``KITH_ACTOR_SIGNING_KEY``); every service holds only the public key
(``KITH_ACTOR_VERIFY_KEY``), so a service can verify and forward an assertion
but never mint one. ``actor`` is a user id, or empty for a call the gateway
makes for nobody in particular (sign-in, refresh, token checks).

In development both keys default to a pair derived from a fixed, public seed.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = "v1"
DEFAULT_TTL_S = 120
_DEV_SEED = hashlib.sha256(b"kith development actor key: never use outside development").digest()


class InvalidAssertion(ValueError):
    """An assertion is missing, malformed, forged or expired."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def dev_signing_key() -> str:
    """The development private key (base64url of the 32-byte seed)."""
    return _b64(_DEV_SEED)


def dev_verify_key() -> str:
    """The development public key (base64url of the 32 raw bytes)."""
    return public_key_of(dev_signing_key())


def public_key_of(signing_key: str) -> str:
    """The verification key matching a signing key (both base64url)."""
    private = Ed25519PrivateKey.from_private_bytes(_unb64(signing_key))
    return _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def generate_signing_key() -> str:
    """A fresh random signing key, for operators (``kith`` prints it with its public key)."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                     NoEncryption())
    return _b64(raw)


class ActorSigner:
    """Mints assertions (the gateway, and test/bench harnesses standing in for it)."""

    def __init__(self, signing_key: str, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(_unb64(signing_key))
        self._ttl = ttl_s
        self._cache: dict[str, tuple[str, float]] = {}  # actor → (assertion, reuse until)
        self._lock = threading.Lock()

    def mint(self, actor: str) -> str:
        """An assertion naming ``actor`` (re-used while it has most of its life left)."""
        now = time.time()
        cached = self._cache.get(actor)
        if cached is not None and cached[1] > now:
            return cached[0]
        expires = int(now) + self._ttl
        body = f"{VERSION}.{actor}.{expires}"
        token = f"{body}.{_b64(self._key.sign(body.encode()))}"
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[actor] = (token, now + self._ttl / 2)
        return token


class ActorVerifier:
    """Checks assertions with the gateway's public key; returns the actor."""

    def __init__(self, verify_key: str, leeway_s: int = 5) -> None:
        self._key = Ed25519PublicKey.from_public_bytes(_unb64(verify_key))
        self._leeway = leeway_s
        self._verified: dict[str, tuple[str, int]] = {}  # assertion → (actor, expires)
        self._lock = threading.Lock()

    def verify(self, token: str | None) -> str:
        """The actor named by a valid, unexpired assertion; raises :class:`InvalidAssertion`."""
        if not token:
            raise InvalidAssertion("no actor assertion")
        now = time.time()
        known = self._verified.get(token)
        if known is None:
            parts = token.split(".")
            if len(parts) != 4 or parts[0] != VERSION:
                raise InvalidAssertion("malformed actor assertion")
            try:
                self._key.verify(_unb64(parts[3]), ".".join(parts[:3]).encode())
                known = (parts[1], int(parts[2]))
            except (InvalidSignature, ValueError):
                raise InvalidAssertion("actor assertion with a bad signature") from None
            with self._lock:
                if len(self._verified) > 50_000:
                    self._verified.clear()
                self._verified[token] = known
        actor, expires = known
        if expires + self._leeway < now:
            raise InvalidAssertion("expired actor assertion")
        return actor
