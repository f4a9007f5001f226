"""Per-author data keys: the texts a user writes are sealed in events under their key.

The keys never leave the post service. When identity reports an account
deleted, :func:`destroy` drops the key in the same transaction that takes the
user's posts down, so their texts become unreadable in the event table, the
topic and every export — while the log itself stays intact.
"""

from __future__ import annotations

from collections.abc import Collection

import psycopg

from kith.common import crypto

AUTHOR_KEYS = crypto.KeyTable("post", "author_keys", cached_in_memory=True)


def key_for(conn: psycopg.Connection, user_id: str) -> bytes:
    """The user's key, created on first use."""
    return AUTHOR_KEYS.key_for(conn, user_id)


def keys_of(conn: psycopg.Connection, user_ids: Collection[str]) -> dict[str, bytes]:
    """The keys that still exist among ``user_ids`` (a shredded user has none)."""
    return {str(u): AUTHOR_KEYS.unwrap(k, u) for u, k in conn.execute(
        "SELECT user_id, key FROM author_keys WHERE user_id = ANY(%s::uuid[])",
        (list(user_ids),))}


def destroy(conn: psycopg.Connection, user_ids: Collection[str]) -> None:
    """Shred the users' keys, and drop them from this process's memory at once."""
    conn.execute("DELETE FROM author_keys WHERE user_id = ANY(%s::uuid[])", (list(user_ids),))
    forget(user_ids)


def forget(user_ids: Collection[str]) -> None:
    """Drop the users' keys from this process's memory (a deleted account's, however learnt)."""
    for user_id in user_ids:
        AUTHOR_KEYS.forget(user_id)
