"""Messaging's inline tables: conversation snapshots, messages and conversation keys.

Every writer runs inside the command's transaction, before the append (see
``docs/architecture.md``). ``load_conversation(lock=True)`` takes the
conversation row lock that serialises a conversation's commands.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from kith.messaging.domain import Conversation
from kith.messaging.events import ConversationCreated, MessageSent


@dataclass(frozen=True)
class StoredMessage:
    """A message as stored: ``text`` is still sealed under the conversation key."""

    id: str
    conversation_id: str
    seq: int
    sender_id: str
    client_message_id: str
    text: str
    sent_at_ms: int


_MESSAGE_COLUMNS = ("message_id::text, conversation_id::text, seq, sender_id::text,"
                    " client_message_id, text, sent_at_ms")


def insert_key(conn: psycopg.Connection, conversation_id: str, key: bytes) -> None:
    conn.execute("INSERT INTO conversation_keys (conversation_id, key) VALUES (%s, %s)",
                 (conversation_id, key))


def load_key(conn: psycopg.Connection, conversation_id: str) -> bytes | None:
    """The conversation's data key; ``None`` once shredded."""
    row = conn.execute("SELECT key FROM conversation_keys WHERE conversation_id = %s",
                       (conversation_id,)).fetchone()
    return bytes(row[0]) if row else None


def load_keys(conn: psycopg.Connection, conversation_ids: list[str]) -> dict[str, bytes]:
    return {cid: bytes(key) for cid, key in conn.execute(
        "SELECT conversation_id::text, key FROM conversation_keys"
        " WHERE conversation_id = ANY(%s::uuid[])", (conversation_ids,))}


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
