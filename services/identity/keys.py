"""The users' data keys (``data_keys``): created with the account, destroyed with it."""

from __future__ import annotations

import uuid

import psycopg

from kith.common import crypto

DATA_KEYS = crypto.KeyTable("identity", "data_keys", key_column="data_key")


def create(conn: psycopg.Connection, user_id: uuid.UUID) -> bytes:
    key = crypto.new_key()
    DATA_KEYS.insert(conn, key, user_id)
    return key


def load(conn: psycopg.Connection, user_id: uuid.UUID) -> bytes | None:
    """The user's key; None once the account is deleted (or never existed)."""
    return DATA_KEYS.key_of(conn, user_id)


def destroy(conn: psycopg.Connection, user_id: uuid.UUID) -> None:
    """Crypto-shredding: without the key the user's sealed fields can never be opened."""
    DATA_KEYS.destroy(conn, user_id)
