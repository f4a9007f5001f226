"""Messaging's inline tables: conversation snapshots, messages and deleted accounts.

Every writer runs inside the command's transaction, before the append (see
``docs/architecture.md``). ``load_conversation(lock=True)`` takes the
conversation row lock that serialises a conversation's commands; the account
locks order creating a conversation against erasing a deleted account.
(The data keys are in :mod:`kith.messaging.keys`.)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import psycopg

from kith.messaging.domain import Conversation
from kith.messaging.events import ConversationCreated, MessageSent

ACCOUNT_LOCK_SPACE = 0x6D736773  # "msgs": advisory locks (space, hashtext(user id))


@dataclass(frozen=True)
class StoredMessage:
    """A message as stored: ``text`` is still sealed under its sender's key (``""`` once
    the sender's account was deleted)."""

    id: str
    conversation_id: str
    seq: int
    sender_id: str
    client_message_id: str
    text: str
    sent_at_ms: int


_MESSAGE_COLUMNS = ("message_id::text, conversation_id::text, seq, sender_id::text,"
                    " client_message_id, text, sent_at_ms")


def insert_conversation(conn: psycopg.Connection, event: ConversationCreated) -> None:
    conn.execute(
        "INSERT INTO conversations (id, created_by, title, created_at_ms, version)"
        " VALUES (%s, %s, %s, %s, 1)",
        (event.conversation_id, event.created_by, event.title, event.created_at_ms))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO conversation_members (conversation_id, user_id, position)"
            " VALUES (%s, %s, %s)",
            [(event.conversation_id, user_id, i) for i, user_id in enumerate(event.member_ids)])


def load_conversation(conn: psycopg.Connection, conversation_id: str,
                      lock: bool = False) -> Conversation | None:
    """The snapshot; with ``lock`` the row stays locked until the transaction ends."""
    row = conn.execute(
        "SELECT id::text, created_by::text, title, created_at_ms, last_seq, version"
        " FROM conversations WHERE id = %s" + (" FOR UPDATE" if lock else ""),
        (conversation_id,)).fetchone()
    if row is None:
        return None
    members = conn.execute(
        "SELECT user_id::text, read_seq, delivered_seq FROM conversation_members"
        " WHERE conversation_id = %s ORDER BY position", (conversation_id,)).fetchall()
    return Conversation(
        id=row[0], created_by=row[1], title=row[2], created_at_ms=row[3],
        members=[m[0] for m in members], last_seq=row[4], version=row[5],
        read_seq={m[0]: m[1] for m in members if m[1]},
        delivered_seq={m[0]: m[2] for m in members if m[2]})


def is_member(conn: psycopg.Connection, conversation_id: str, user_id: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM conversation_members WHERE conversation_id = %s AND user_id = %s",
        (conversation_id, user_id)).fetchone() is not None


def record_message(conn: psycopg.Connection, event: MessageSent, version: int) -> None:
    """The message row, the conversation's last seq, and the sender's marks (sending reads)."""
    conn.execute(
        "INSERT INTO messages (conversation_id, seq, message_id, sender_id, client_message_id,"
        " text, sent_at_ms) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (event.conversation_id, event.seq, event.message_id, event.sender_id,
         event.client_message_id, event.text, event.sent_at_ms))
    conn.execute("UPDATE conversations SET last_seq = %s, version = %s WHERE id = %s",
                 (event.seq, version, event.conversation_id))
    conn.execute(
        "UPDATE conversation_members SET read_seq = %s, delivered_seq = %s"
        " WHERE conversation_id = %s AND user_id = %s",
        (event.seq, event.seq, event.conversation_id, event.sender_id))


def record_marks(conn: psycopg.Connection, conversation: Conversation, user_id: str,
                 version: int) -> None:
    """Store ``user_id``'s read and delivery marks as the aggregate now holds them."""
    conn.execute(
        "UPDATE conversation_members SET read_seq = %s, delivered_seq = %s"
        " WHERE conversation_id = %s AND user_id = %s",
        (conversation.read_seq.get(user_id, 0), conversation.delivered_seq.get(user_id, 0),
         conversation.id, user_id))
    conn.execute("UPDATE conversations SET version = %s WHERE id = %s", (version, conversation.id))


def remove_member(conn: psycopg.Connection, conversation_id: str, user_id: str,
                  version: int) -> None:
    conn.execute("DELETE FROM conversation_members WHERE conversation_id = %s AND user_id = %s",
                 (conversation_id, user_id))
    conn.execute("UPDATE conversations SET version = %s WHERE id = %s", (version, conversation_id))


def find_message(conn: psycopg.Connection, conversation_id: str, sender_id: str,
                 client_message_id: str) -> StoredMessage | None:
    """The message ``sender_id`` already sent with ``client_message_id``, if any."""
    row = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages"
        " WHERE conversation_id = %s AND sender_id = %s AND client_message_id = %s",
        (conversation_id, sender_id, client_message_id)).fetchone()
    return StoredMessage(*row) if row else None


def list_messages(conn: psycopg.Connection, conversation_id: str, after_seq: int,
                  limit: int) -> list[StoredMessage]:
    return [StoredMessage(*row) for row in conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages"
        " WHERE conversation_id = %s AND seq > %s ORDER BY seq LIMIT %s",
        (conversation_id, after_seq, limit))]


# -- deleted accounts -------------------------------------------------------------------------

def lock_accounts(conn: psycopg.Connection, user_ids: Collection[str], exclusive: bool) -> None:
    """Serialise adding members (shared) against erasing a deleted account (exclusive).

    Taken in a stable order before any other lock, so neither side can deadlock.
    """
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    for user_id in sorted(set(user_ids)):
        conn.execute(f"SELECT {fn}(%s, hashtext(%s))", (ACCOUNT_LOCK_SPACE, user_id))


def deleted_among(conn: psycopg.Connection, user_ids: Collection[str]) -> set[str]:
    return {str(r[0]) for r in conn.execute(
        "SELECT user_id FROM deleted_accounts WHERE user_id = ANY(%s::uuid[])",
        (list(user_ids),))}


def mark_deleted(conn: psycopg.Connection, user_id: str, deleted_at_ms: int) -> None:
    conn.execute("INSERT INTO deleted_accounts (user_id, deleted_at_ms) VALUES (%s, %s)"
                 " ON CONFLICT DO NOTHING", (user_id, deleted_at_ms))


def lock_conversations_of(conn: psycopg.Connection, user_id: str) -> list[str]:
    """The conversations ``user_id`` is a member of, their rows locked in id order."""
    return [str(r[0]) for r in conn.execute(
        "SELECT id FROM conversations WHERE id IN"
        " (SELECT conversation_id FROM conversation_members WHERE user_id = %s)"
        " ORDER BY id FOR UPDATE", (user_id,))]


def erase_texts(conn: psycopg.Connection, user_id: str) -> None:
    """Empty the stored (sealed) texts ``user_id`` sent, in messages and in the inbox.

    A later inbox replay can only bring back ciphertext whose key is gone.
    """
    conn.execute("UPDATE messages SET text = '' WHERE sender_id = %s AND text <> ''",
                 (user_id,))
    conn.execute("UPDATE inbox SET last_text = NULL"
                 " WHERE last_sender_id = %s AND last_text IS NOT NULL", (user_id,))
