"""The users' data keys (``data_keys``): created with the account, destroyed with it."""

from __future__ import annotations

import uuid

import psycopg

from kith.common import crypto

DATA_KEYS = crypto.KeyTable("identity", "data_keys", key_column="data_key")


def create(conn: psycopg.Connection, user_id: uuid.UUID) -> bytes:
    key = crypto.new_key()
    conn.execute("INSERT INTO data_keys (user_id, data_key) VALUES (%s, %s)",
                 (user_id, DATA_KEYS.wrap(key, user_id)))
    return key


def load(conn: psycopg.Connection, user_id: uuid.UUID) -> bytes | None:
    """The user's key; None once the account is deleted (or never existed)."""
    row = conn.execute("SELECT data_key FROM data_keys WHERE user_id = %s",
                       (user_id,)).fetchone()
    return DATA_KEYS.unwrap(row[0], user_id) if row else None


def destroy(conn: psycopg.Connection, user_id: uuid.UUID) -> None:
    """Crypto-shredding: without the key the user's sealed fields can never be opened."""
    conn.execute("DELETE FROM data_keys WHERE user_id = %s", (user_id,))
