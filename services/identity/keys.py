"""The users' data keys (``data_keys``): created with the account, destroyed with it."""

from __future__ import annotations

import uuid

import psycopg

from kith.common import crypto


def create(conn: psycopg.Connection, user_id: uuid.UUID) -> bytes:
    key = crypto.new_key()
    conn.execute("INSERT INTO data_keys (user_id, data_key) VALUES (%s, %s)", (user_id, key))
    return key


def load(conn: psycopg.Connection, user_id: uuid.UUID) -> bytes | None:
    """The user's key; None once the account is deleted (or never existed)."""
    row = conn.execute("SELECT data_key FROM data_keys WHERE user_id = %s",
                       (user_id,)).fetchone()
    return bytes(row[0]) if row else None


def destroy(conn: psycopg.Connection, user_id: uuid.UUID) -> None:
    """Crypto-shredding: without the key the user's sealed fields can never be opened."""
    conn.execute("DELETE FROM data_keys WHERE user_id = %s", (user_id,))
