"""Messaging's data keys, and sealing and opening the fields they protect.

A conversation's title is sealed under the conversation key
(``conversation_keys``); a message text under the key of its (conversation,
sender) pair (``sender_keys``), with ``"<conversation>/<sender>"`` as
associated data. Deleting an account deletes its sender keys, so exactly that
user's texts become unreadable in the events, on the topic and in any export;
the keys never leave the service.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import psycopg

from kith.common import crypto

SenderPair = tuple[str, str]  # (conversation id, sender id)
CONVERSATION_KEYS = crypto.KeyTable("messaging", "conversation_keys", ("conversation_id",))
SENDER_KEYS = crypto.KeyTable("messaging", "sender_keys", ("conversation_id", "user_id"))


def text_subject(conversation_id: str, sender_id: str) -> str:
    """The associated data a text is sealed with: it cannot be moved to another pair."""
    return f"{conversation_id}/{sender_id}"


def open_field(key: bytes | None, subject: str, token: str | None) -> str:
    """Plaintext of a sealed field; ``""`` when it is empty or its key is shredded."""
    if not token:
        return ""
    try:
        return crypto.decrypt(key, subject, token)
    except crypto.ShreddedError:
        return ""


def open_text(keys: Mapping[SenderPair, bytes], conversation_id: str, sender_id: str,
              token: str | None) -> str:
    return open_field(keys.get((conversation_id, sender_id)),
                      text_subject(conversation_id, sender_id), token)


# -- conversation keys (titles) --------------------------------------------------------------

def insert_conversation_key(conn: psycopg.Connection, conversation_id: str, key: bytes) -> None:
    CONVERSATION_KEYS.insert(conn, key, conversation_id)


def conversation_key(conn: psycopg.Connection, conversation_id: str) -> bytes | None:
    """The conversation's data key; ``None`` once shredded."""
    return CONVERSATION_KEYS.key_of(conn, conversation_id)


def conversation_keys(conn: psycopg.Connection,
                      conversation_ids: Collection[str]) -> dict[str, bytes]:
    return {cid: CONVERSATION_KEYS.unwrap(key, cid) for cid, key in conn.execute(
        "SELECT conversation_id::text, key FROM conversation_keys"
        " WHERE conversation_id = ANY(%s::uuid[])", (list(conversation_ids),))}


# -- sender keys (texts) ---------------------------------------------------------------------

def sender_key_for(conn: psycopg.Connection, conversation_id: str, sender_id: str) -> bytes:
    """The pair's key, created on its first message (under the conversation's row lock)."""
    return SENDER_KEYS.key_for(conn, conversation_id, sender_id)


def sender_keys(conn: psycopg.Connection,
                pairs: Collection[SenderPair]) -> dict[SenderPair, bytes]:
    """The keys that still exist among ``pairs`` (a deleted account's are gone)."""
    if not pairs:
        return {}
    conversations, senders = zip(*pairs, strict=True)
    return {(cid, uid): SENDER_KEYS.unwrap(key, cid, uid) for cid, uid, key in conn.execute(
        "SELECT k.conversation_id::text, k.user_id::text, k.key FROM sender_keys k"
        " JOIN unnest(%s::uuid[], %s::uuid[]) AS p(c, u)"
        " ON k.conversation_id = p.c AND k.user_id = p.u",
        (list(conversations), list(senders)))}


def senders_keys(conn: psycopg.Connection, conversation_id: str) -> dict[SenderPair, bytes]:
    """Every remaining sender key of one conversation."""
    return {(conversation_id, uid): SENDER_KEYS.unwrap(key, conversation_id, uid)
            for uid, key in conn.execute(
        "SELECT user_id::text, key FROM sender_keys WHERE conversation_id = %s",
        (conversation_id,))}


def destroy_sender_keys(conn: psycopg.Connection, user_id: str) -> None:
    """Shred every text ``user_id`` ever sent, in every conversation."""
    conn.execute("DELETE FROM sender_keys WHERE user_id = %s", (user_id,))
