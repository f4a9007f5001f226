"""Messaging's command and query handlers.

Commands on an existing conversation lock its snapshot row, decide with the
:class:`~kith.messaging.domain.Conversation` aggregate, write the inline rows
and append to the conversation's stream, all in one transaction. The row lock
makes a conversation's commands take turns, which is what numbers messages
gap-free without retries; the append's expected version stays as the
safety net (a :class:`ConcurrencyError` is retried, then surfaced).
Idempotent sends rest on the ``(conversation, sender, client_message_id)``
lookup made under that lock, backed by a unique key.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from kith.common import crypto
from kith.common.errors import Conflict, InvalidArgument, NotFound, check
from kith.common.eventstore import ConcurrencyError, EventStore
from kith.common.logs import request_id
from kith.messaging import readmodel
from kith.messaging.domain import (
    Conversation,
    check_not_blocked,
    check_shares_niche,
    start_conversation,
)
from kith.messaging.events import ConversationEvent, to_new_event
from kith.messaging.graph_client import Graph
from kith.messaging.projections import read_inbox
from kith.messaging.readmodel import StoredMessage

T = TypeVar("T")
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ConversationView:
    id: str
    title: str
    members: list[str]
    created_by: str
    created_at_ms: int
    last_seq: int
    read_seq: int
    delivered_seq: int


@dataclass(frozen=True)
class MessageView:
    id: str
    conversation_id: str
    seq: int
    sender_id: str
    client_message_id: str
    text: str
    sent_at_ms: int


@dataclass(frozen=True)
class InboxItemView:
    id: str
    title: str
    members: list[str]
    last_message: MessageView | None
    unread_count: int
    last_seq: int
    read_seq: int


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxItemView]
    next_cursor: str


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _open(key: bytes | None, conversation_id: str, token: str | None) -> str:
    """Plaintext of a sealed field; ``""`` once the conversation key is shredded."""
    if not token:
        return ""
    try:
        return crypto.decrypt(key, conversation_id, token)
    except crypto.ShreddedError:
        return ""


class MessagingApp:
    def __init__(self, store: EventStore, graph: Graph, max_members: int,
                 clock: Callable[[], int] = _now_ms) -> None:
        self.store = store
        self.graph = graph
        self.max_members = max_members
        self.clock = clock

    # -- commands ---------------------------------------------------------------------------

    def create_conversation(self, actor_id: str, member_ids: list[str],
                            title: str) -> ConversationView:
        conversation_id = str(uuid.uuid4())
        key = crypto.new_key()
        sealed_title = crypto.encrypt(key, conversation_id, title) if title else None
        event = start_conversation(conversation_id, actor_id, member_ids, sealed_title,
                                   self.max_members, self.clock())
        others = event.member_ids[1:]
        check_shares_niche(others, self.graph.sharing_a_niche(actor_id, others))
        check_not_blocked(self.graph.blocked_among(actor_id, others))
        with self.store.transaction() as conn:
            readmodel.insert_key(conn, conversation_id, key)
            readmodel.insert_conversation(conn, event)
            self._append(conn, conversation_id, 0, event, actor_id)
        return ConversationView(conversation_id, title, event.member_ids, actor_id,
                                event.created_at_ms, 0, 0, 0)

    def send_message(self, actor_id: str, conversation_id: str, client_message_id: str,
                     text: str) -> MessageView:
        """Send, or return the message an earlier attempt with this client id already sent."""
        with self.store.pool.connection() as conn:
            snapshot = self._member_view(conn, conversation_id, actor_id)
            if earlier := readmodel.find_message(conn, conversation_id, actor_id,
                                                 client_message_id):
                return self._message(conn, earlier)
        # The graph is asked before taking the lock; under it, only if the pair changed.
        checked = self._check_direct_block(snapshot, actor_id, None)

        def attempt() -> MessageView:
            with self.store.transaction() as conn:
                conversation = self._locked(conn, conversation_id, actor_id)
                if earlier := readmodel.find_message(conn, conversation_id, actor_id,
                                                     client_message_id):
                    return self._message(conn, earlier)
                self._check_direct_block(conversation, actor_id, checked)
                key = readmodel.load_key(conn, conversation_id)
                if key is None:  # shredded: the conversation is gone for good
                    raise NotFound("conversation not found")
                event = conversation.send(actor_id, str(uuid.uuid4()), client_message_id,
                                          crypto.encrypt(key, conversation_id, text),
                                          self.clock())
                readmodel.record_message(conn, event, conversation.version + 1)
                self._append(conn, conversation_id, conversation.version, event, actor_id)
                return MessageView(event.message_id, conversation_id, event.seq, actor_id,
                                   client_message_id, text, event.sent_at_ms)

        return self._retrying(attempt)

    def mark_read(self, actor_id: str, conversation_id: str, seq: int) -> None:
        self._mark(actor_id, conversation_id, lambda c: c.mark_read(actor_id, seq, self.clock()))

    def mark_delivered(self, actor_id: str, conversation_id: str, seq: int) -> None:
        self._mark(actor_id, conversation_id,
                   lambda c: c.mark_delivered(actor_id, seq, self.clock()))

    def leave_conversation(self, actor_id: str, conversation_id: str) -> None:
        def attempt() -> None:
            with self.store.transaction() as conn:
                conversation = self._locked(conn, conversation_id, actor_id)
                event = conversation.leave(actor_id, self.clock())
                readmodel.remove_member(conn, conversation_id, actor_id, conversation.version + 1)
                self._append(conn, conversation_id, conversation.version, event, actor_id)

        self._retrying(attempt)

    # -- queries ----------------------------------------------------------------------------

    def get_conversation(self, actor_id: str, conversation_id: str) -> ConversationView:
        with self.store.pool.connection() as conn:
            conversation = self._member_view(conn, conversation_id, actor_id)
            key = readmodel.load_key(conn, conversation_id)
        return ConversationView(
            conversation.id, _open(key, conversation.id, conversation.title),
            conversation.members, conversation.created_by, conversation.created_at_ms,
            conversation.last_seq, conversation.read_seq.get(actor_id, 0),
            conversation.delivered_seq.get(actor_id, 0))

    def list_messages(self, actor_id: str, conversation_id: str, after_seq: int,
                      limit: int) -> tuple[list[MessageView], int]:
        """Messages after ``after_seq`` in seq order, and the next page's ``after_seq`` (0: end)."""
        with self.store.pool.connection() as conn:
            check(readmodel.is_member(conn, conversation_id, actor_id),
                  NotFound("conversation not found"))
            rows = readmodel.list_messages(conn, conversation_id, after_seq, limit + 1)
            key = readmodel.load_key(conn, conversation_id)
        page = [self._open_message(key, row) for row in rows[:limit]]
        return page, (page[-1].seq if len(rows) > limit else 0)

    def list_conversations(self, actor_id: str, limit: int, cursor: str) -> InboxPage:
        """The caller's inbox (the projection), most recently active first."""
        before = _decode_cursor(cursor) if cursor else None
        with self.store.pool.connection() as conn:
            rows = read_inbox(conn, actor_id, limit + 1, before)
            keys = readmodel.load_keys(conn, [r.conversation_id for r in rows])
        items = []
        for row in rows[:limit]:
            key = keys.get(row.conversation_id)
            last = None
            if row.last_message_id is not None:
                last = MessageView(row.last_message_id, row.conversation_id, row.last_seq,
                                   row.last_sender_id or "", row.last_client_message_id or "",
                                   _open(key, row.conversation_id, row.last_text),
                                   row.last_sent_at_ms or 0)
            items.append(InboxItemView(row.conversation_id,
                                       _open(key, row.conversation_id, row.title),
                                       list(row.member_ids), last, row.unread_count,
                                       row.last_seq, row.read_seq))
        next_cursor = ""
        if len(rows) > limit:
            last_row = rows[limit - 1]
            next_cursor = _encode_cursor(last_row.updated_at_ms, last_row.conversation_id)
        return InboxPage(items, next_cursor)

    # -- internals --------------------------------------------------------------------------

    def _mark(self, actor_id: str, conversation_id: str,
              decide: Callable[[Conversation], ConversationEvent | None]) -> None:
        def attempt() -> None:
            with self.store.transaction() as conn:
                conversation = self._locked(conn, conversation_id, actor_id)
                event = decide(conversation)
                if event is None:
                    return  # marks only move forward: nothing to record
                conversation.apply(event)
                readmodel.record_marks(conn, conversation, actor_id, conversation.version + 1)
                self._append(conn, conversation_id, conversation.version, event, actor_id)

        self._retrying(attempt)

    def _check_direct_block(self, conversation: Conversation, actor_id: str,
                            checked: str | None) -> str | None:
        """Refuse when the only other member and the actor block each other; return who was
        checked (``checked`` is a peer already known to be fine)."""
        peer = conversation.direct_peer(actor_id)
        if peer is not None and peer != checked:
            check_not_blocked(self.graph.blocked_among(actor_id, [peer]))
        return peer

    @staticmethod
    def _member_view(conn: psycopg.Connection, conversation_id: str, actor_id: str,
                     lock: bool = False) -> Conversation:
        """The snapshot (locked with ``lock``), if ``actor_id`` is a member; else NotFound."""
        conversation = readmodel.load_conversation(conn, conversation_id, lock=lock)
        if conversation is None:
            raise NotFound("conversation not found")
        conversation.check_member(actor_id)
        return conversation

    def _locked(self, conn: psycopg.Connection, conversation_id: str,
                actor_id: str) -> Conversation:
        return self._member_view(conn, conversation_id, actor_id, lock=True)

    def _append(self, conn: psycopg.Connection, conversation_id: str, expected_version: int,
                event: ConversationEvent, actor_id: str) -> None:
        self.store.append(uuid.UUID(conversation_id), expected_version, [to_new_event(event)],
                          metadata={"actor_id": actor_id, "request_id": request_id.get()},
                          conn=conn)

    @staticmethod
    def _retrying(attempt: Callable[[], T]) -> T:
        for _ in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except ConcurrencyError:
                continue
        raise Conflict("the conversation changed concurrently; try again")

    def _message(self, conn: psycopg.Connection, stored: StoredMessage) -> MessageView:
        return self._open_message(readmodel.load_key(conn, stored.conversation_id), stored)

    @staticmethod
    def _open_message(key: bytes | None, stored: StoredMessage) -> MessageView:
        return MessageView(stored.id, stored.conversation_id, stored.seq, stored.sender_id,
                           stored.client_message_id,
                           _open(key, stored.conversation_id, stored.text), stored.sent_at_ms)


def _encode_cursor(updated_at_ms: int, conversation_id: str) -> str:
    return base64.urlsafe_b64encode(f"{updated_at_ms}|{conversation_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        at, conversation_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return int(at), str(uuid.UUID(conversation_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("malformed cursor", details={"cursor": "not a cursor we issued"}
                              ) from None
