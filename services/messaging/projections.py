"""The inbox: each member's conversations with the last message and the read mark.

Fed from ``messaging.events.v1`` by :class:`kith.common.projection.ProjectionRunner`
(exactly-once effect, rebuildable from offset zero). All events of a conversation
share one stream and so one partition: they arrive here in stream order.
Unread count = ``last_seq - read_seq``: a MessageSent moves its sender's read mark,
so every message after a member's mark is someone else's. The last text of a
deleted account is kept empty (``MessagingApplication.erase_account`` empties the rows it
finds; this projection never writes one back), so a rebuild equals the live rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from kith.common.projection import Event
from kith.messaging.events import (
    ConversationCreated,
    MemberLeftConversation,
    MessageSent,
    MessagesRead,
    from_data,
)


class InboxProjection:
    """Keeps the ``inbox`` table; :meth:`apply` runs in the runner's transaction."""

    name = "inbox"
    tables = ("inbox",)  # what `kith replay rebuild messaging inbox` copies and swaps

    def __init__(self, topic: str) -> None:
        self.topics = (topic,)

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        for raw in events:
            event = from_data(raw.type, raw.data)
            if isinstance(event, ConversationCreated):
                self._created(conn, event)
            elif isinstance(event, MemberLeftConversation):
                conn.execute("DELETE FROM inbox WHERE conversation_id = %s AND user_id = %s",
                             (event.conversation_id, event.user_id))
                conn.execute("UPDATE inbox SET member_ids = %s WHERE conversation_id = %s",
                             (event.member_ids, event.conversation_id))
            elif isinstance(event, MessageSent):
                conn.execute(
                    "UPDATE inbox SET last_seq = %(seq)s, last_message_id = %(id)s,"
                    " last_sender_id = %(sender)s, last_client_message_id = %(cid)s,"
                    # A deleted account's text is not brought back (rebuild, lag).
                    " last_text = CASE WHEN EXISTS (SELECT 1 FROM deleted_accounts"
                    "  WHERE user_id = %(sender)s) THEN NULL ELSE %(text)s END,"
                    " last_sent_at_ms = %(at)s,"
                    " updated_at_ms = greatest(updated_at_ms, %(at)s),"
                    " read_seq = CASE WHEN user_id = %(sender)s THEN %(seq)s ELSE read_seq END"
                    " WHERE conversation_id = %(conv)s AND last_seq < %(seq)s",
                    {"seq": event.seq, "id": event.message_id, "sender": event.sender_id,
                     "cid": event.client_message_id, "text": event.text, "at": event.sent_at_ms,
                     "conv": event.conversation_id})
            elif isinstance(event, MessagesRead):
                conn.execute(
                    "UPDATE inbox SET read_seq = greatest(read_seq, %s)"
                    " WHERE conversation_id = %s AND user_id = %s",
                    (event.seq, event.conversation_id, event.user_id))
            # MessagesDelivered changes nothing the inbox shows.

    def reset(self, conn: psycopg.Connection) -> None:
        conn.execute("TRUNCATE inbox")

    @staticmethod
    def _created(conn: psycopg.Connection, event: ConversationCreated) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO inbox (user_id, conversation_id, title, member_ids, updated_at_ms)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(user_id, event.conversation_id, event.title, event.member_ids,
                  event.created_at_ms) for user_id in event.member_ids])


@dataclass(frozen=True)
class InboxRow:
    """One inbox entry as stored: ``title`` and ``last_text`` are still sealed."""

    conversation_id: str
    title: str | None
    member_ids: list[str]
    last_seq: int
    read_seq: int
    last_message_id: str | None
    last_sender_id: str | None
    last_client_message_id: str | None
    last_text: str | None
    last_sent_at_ms: int | None
    updated_at_ms: int

    @property
    def unread_count(self) -> int:
        return self.last_seq - self.read_seq


def read_inbox(conn: psycopg.Connection, user_id: str, limit: int,
               before: tuple[int, str] | None = None) -> list[InboxRow]:
    """``user_id``'s entries, most recently active first, after the keyset position ``before``."""
    after_clause = ""
    params: list[object] = [user_id]
    if before is not None:
        after_clause = " AND (updated_at_ms, conversation_id) < (%s, %s::uuid)"
        params += list(before)
    rows = conn.execute(
        "SELECT conversation_id::text, title, member_ids, last_seq, read_seq,"
        " last_message_id::text, last_sender_id::text, last_client_message_id, last_text,"
        " last_sent_at_ms, updated_at_ms FROM inbox WHERE user_id = %s" + after_clause +
        " ORDER BY updated_at_ms DESC, conversation_id DESC LIMIT %s",
        [*params, limit]).fetchall()
    return [InboxRow(*row) for row in rows]
