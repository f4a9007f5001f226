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
import binascii
import hashlib
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
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


# -- key wrapping ----------------------------------------------------------------------------
# DESIGN §5b: a data key never sits in plain beside the data it protects. Each service's key
# tables hold its data keys wrapped (AES-256-GCM) under a key-encryption key (KEK) that lives
# outside the database (a Secret, KITH_KEY_ENCRYPTION_KEYS). A dump of the database alone opens
# nothing. Shredding is unchanged: deleting the wrapped row destroys the data key.

WRAPPED = b"kw1"
_WRAP_AAD = b"kith-data-key\x00"
DEVELOPMENT_KEK_ID = "dev"
# Development only (like the development JWT secret and actor keys): a fixed KEK, so the
# wrapping path runs everywhere; outside development it is refused.
DEVELOPMENT_KEK = hashlib.sha256(b"kith development key-encryption key").digest()


class KeyUnavailable(RuntimeError):
    """A stored data key could not be unwrapped: an unknown or wrong KEK, or a tampered row.

    A configuration fault, never erasure: it must fail loudly, because treating it as a
    shredded key would show a person's data as deleted when it is not.
    """


@dataclass(frozen=True)
class Keyring:
    """The KEKs a process may unwrap with; new keys are wrapped under ``current``."""

    keks: Mapping[str, bytes]
    current: str
    accept_unwrapped: bool = False  # read 32-byte keys stored before wrapping existed

    def __post_init__(self) -> None:
        if self.current not in self.keks:
            raise ValueError(f"the current KEK {self.current!r} is not in the keyring")
        for ident, kek in self.keks.items():
            if not ident or len(ident.encode()) > 255 or ":" in ident or "," in ident:
                raise ValueError(f"KEK id {ident!r} must be 1 to 255 bytes without ':' or ','")
            if len(kek) != 32:
                raise ValueError(f"KEK {ident!r} must be 32 bytes (256 bits)")

    @classmethod
    def parse(cls, spec: str, accept_unwrapped: bool = False) -> Keyring:
        """``id:base64key[,id:base64key…]`` — the first wraps new keys, the others (older
        KEKs during a rotation) only unwrap."""
        keks: dict[str, bytes] = {}
        for part in (p.strip() for p in spec.split(",")):
            ident, sep, encoded = part.partition(":")
            if not sep:
                raise ValueError("each KEK is written id:base64key")
            try:
                keks[ident] = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise ValueError(f"KEK {ident!r} is not valid base64") from None
        return cls(keks, next(iter(keks)), accept_unwrapped)

    @classmethod
    def development(cls) -> Keyring:
        return cls({DEVELOPMENT_KEK_ID: DEVELOPMENT_KEK}, DEVELOPMENT_KEK_ID,
                   accept_unwrapped=True)

    @property
    def is_development(self) -> bool:
        return any(kek == DEVELOPMENT_KEK for kek in self.keks.values())

    def wrap(self, data_key: bytes, subject: str) -> bytes:
        """``kw1 || len(id) || id || nonce || AES-GCM(KEK, data_key)``, bound to ``subject``
        (the key's table and owner), so a wrapped key cannot be moved to another row."""
        ident = self.current.encode()
        nonce = os.urandom(12)
        sealed = AESGCM(self.keks[self.current]).encrypt(nonce, data_key,
                                                          _WRAP_AAD + subject.encode())
        return WRAPPED + bytes([len(ident)]) + ident + nonce + sealed

    def unwrap(self, stored: bytes, subject: str) -> bytes:
        """The data key of a stored row; :class:`KeyUnavailable` if it cannot be opened."""
        if not stored.startswith(WRAPPED):
            if self.accept_unwrapped and len(stored) == 32:
                return stored
            raise KeyUnavailable(f"the data key of {subject} is not wrapped; run "
                                 "`kith keys wrap` (or allow unwrapped keys while migrating)")
        ident, nonce, sealed = _split(stored)
        kek = self.keks.get(ident)
        if kek is None:
            raise KeyUnavailable(f"the data key of {subject} is wrapped under KEK {ident!r}, "
                                 "which is not in KITH_KEY_ENCRYPTION_KEYS")
        try:
            return AESGCM(kek).decrypt(nonce, sealed, _WRAP_AAD + subject.encode())
        except InvalidTag:
            raise KeyUnavailable(f"the data key of {subject} does not open under KEK "
                                 f"{ident!r}: a wrong KEK or a tampered row") from None

    def is_current(self, stored: bytes) -> bool:
        """Whether ``stored`` is wrapped under the current KEK (else ``kith keys wrap``
        rewraps it)."""
        return stored.startswith(WRAPPED) and _split(stored)[0] == self.current


def _canonical(row_id: object) -> str:
    """A uuid in its one spelling (a row is bound to its id however a caller wrote it)."""
    try:
        return str(uuid.UUID(str(row_id)))
    except ValueError:
        return str(row_id)


def _split(stored: bytes) -> tuple[str, bytes, bytes]:
    try:
        size = stored[len(WRAPPED)]
        start = len(WRAPPED) + 1
        ident = stored[start:start + size].decode()
    except (IndexError, UnicodeDecodeError):
        raise KeyUnavailable("a wrapped data key is malformed") from None
    rest = stored[start + size:]
    return ident, rest[:12], rest[12:]


_keyring = Keyring.development()

# Unwrapped data keys this process has read, by subject (see KeyTable.key_for): at most
# CACHED_KEYS, least recently used dropped first, each for at most CACHED_KEY_TTL_S (a key
# another process shredded leaves this one's memory by then); KeyTable.forget/destroy at once.
CACHED_KEYS = 50_000
CACHED_KEY_TTL_S = 60.0
_cache: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # subject → (key, kept at)
_cache_lock = threading.Lock()


def use_keyring(keyring: Keyring) -> None:
    """Set the process's keyring, once, at the edge (a service's start, a CLI command)."""
    global _keyring
    _keyring = keyring
    with _cache_lock:
        _cache.clear()


def keyring() -> Keyring:
    return _keyring


@dataclass(frozen=True)
class KeyTable:
    """A table of data keys: ``key_column`` holds each key wrapped under the process's
    keyring, bound to the service, the table and the row's ``id_columns``."""

    service: str
    table: str
    id_columns: tuple[str, ...] = ("user_id",)
    key_column: str = "key"
    # Keep keys read by key_for in memory (only for a table whose every write checks, under
    # a lock, that the subject still exists before asking for its key: see key_for).
    cached_in_memory: bool = False

    def subject(self, *ids: object) -> str:
        return "/".join([self.service, self.table, *map(_canonical, ids)])

    def wrap(self, data_key: bytes, *ids: object) -> bytes:
        """``data_key`` as this table stores it (see :class:`Keyring`)."""
        return _keyring.wrap(data_key, self.subject(*ids))

    def new(self, *ids: object) -> bytes:
        """A fresh data key, wrapped for the row ``ids``."""
        return self.wrap(new_key(), *ids)

    def unwrap(self, stored: bytes | memoryview, *ids: object) -> bytes:
        """A stored key, opened; :class:`KeyUnavailable` if it cannot be — never "shredded"."""
        return _keyring.unwrap(bytes(stored), self.subject(*ids))

    def _where(self) -> str:
        return " AND ".join(f"{c} = %s" for c in self.id_columns)

    def insert(self, conn: psycopg.Connection, data_key: bytes, *ids: object) -> None:
        """Store ``data_key`` (wrapped) for a new row ``ids``."""
        conn.execute(f"INSERT INTO {self.table} ({', '.join(self.id_columns)}, "
                     f"{self.key_column}) VALUES ({', '.join(['%s'] * len(ids))}, %s)",
                     (*ids, self.wrap(data_key, *ids)))

    def key_for(self, conn: psycopg.Connection, *ids: object) -> bytes:
        """The row's data key, created (and stored wrapped) on first use.

        With ``cached_in_memory``, a key read from a row another transaction committed is
        kept in this process's memory and answered from there until :meth:`forget` (or
        :meth:`destroy`) drops it or ``CACHED_KEY_TTL_S`` passes; a key this transaction
        created or rewrote is not kept (the transaction may still roll back). Such a
        table's writers must check, under their lock, that the subject still exists
        before asking (post's writes check ``deleted_authors``).
        """
        if not self.cached_in_memory:
            return self._upsert(conn, *ids)
        subject = self.subject(*ids)
        with _cache_lock:
            cached = _cache.get(subject)
            if cached is not None:
                if time.monotonic() - cached[1] < CACHED_KEY_TTL_S:
                    _cache.move_to_end(subject)
                    return cached[0]
                del _cache[subject]
        k = self.key_column
        row = conn.execute(
            # Whether the row version is this transaction's own (uncommitted) write.
            f"SELECT {k}, xmin::text::bigint"
            " = pg_current_xact_id_if_assigned()::text::bigint %% 4294967296"
            f" FROM {self.table} WHERE {self._where()}", ids).fetchone()
        if row is not None:
            key = self.unwrap(row[0], *ids)
            if not row[1]:
                with _cache_lock:
                    _cache[subject] = (key, time.monotonic())
                    while len(_cache) > CACHED_KEYS:
                        _cache.popitem(last=False)
            return key
        return self._upsert(conn, *ids)

    def _upsert(self, conn: psycopg.Connection, *ids: object) -> bytes:
        columns, k = ", ".join(self.id_columns), self.key_column
        row = conn.execute(
            f"INSERT INTO {self.table} ({columns}, {k}) VALUES "
            f"({', '.join(['%s'] * len(ids))}, %s) ON CONFLICT ({columns})"
            f" DO UPDATE SET {k} = {self.table}.{k} RETURNING {k}",
            (*ids, self.new(*ids))).fetchone()
        assert row is not None  # RETURNING of an upsert always has its row
        return self.unwrap(row[0], *ids)

    def key_of(self, conn: psycopg.Connection, *ids: object) -> bytes | None:
        """The row's data key; ``None`` once it was destroyed (or never made)."""
        row = conn.execute(f"SELECT {self.key_column} FROM {self.table} WHERE {self._where()}",
                           ids).fetchone()
        return self.unwrap(row[0], *ids) if row else None

    def destroy(self, conn: psycopg.Connection, *ids: object) -> None:
        """Crypto-shredding: without the key, what it sealed can never be opened again."""
        conn.execute(f"DELETE FROM {self.table} WHERE {self._where()}", ids)
        self.forget(*ids)

    def forget(self, *ids: object) -> None:
        """Drop the row's key from this process's memory (:meth:`key_for`)."""
        with _cache_lock:
            _cache.pop(self.subject(*ids), None)

    def cached(self, *ids: object) -> bool:
        """Whether this process holds the row's key in memory."""
        with _cache_lock:
            return self.subject(*ids) in _cache

    def rewrap(self, conn: psycopg.Connection, batch: int = 500) -> int:
        """Wrap every row's key under the current KEK (keys stored unwrapped, or under an
        older KEK during a rotation); returns how many rows changed. Idempotent."""
        ids, where = ", ".join(f"{c}::text" for c in self.id_columns), self._where()
        changed = 0
        with conn.transaction(), conn.cursor(name=f"rewrap_{self.table}") as rows:
            rows.itersize = batch  # a snapshot, read in batches while the rows are updated
            for *row_ids, stored in rows.execute(
                    f"SELECT {ids}, {self.key_column} FROM {self.table}"):
                if _keyring.is_current(bytes(stored)):
                    continue
                conn.execute(f"UPDATE {self.table} SET {self.key_column} = %s WHERE {where}",
                             (self.wrap(self.unwrap(stored, *row_ids), *row_ids), *row_ids))
                changed += 1
        return changed
