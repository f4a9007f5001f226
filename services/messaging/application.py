"""Messaging's command and query handlers.

Commands on an existing conversation lock its snapshot row, decide with the
:class:`~kith.messaging.domain.Conversation` aggregate, write the inline rows
and append to the conversation's stream, all in one transaction. The row lock
makes a conversation's commands take turns, which is what numbers messages
gap-free without retries; the append's expected version stays as the
safety net (a :class:`ConcurrencyError` is retried, then surfaced).
Idempotent sends rest on the ``(conversation, sender, client_message_id)``
lookup made under that lock, backed by a unique key. Titles are sealed under
the conversation key, texts under the (conversation, sender) key
(:mod:`kith.messaging.keys`), so erasing a deleted account shreds its texts only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from kith.common import crypto, cursors
from kith.common.commands import Command, CommandRunner, ResultCodec
from kith.common.errors import NotFound, check
from kith.common.events import to_new_event
from kith.common.eventstore import EventStore
from kith.messaging import keys, readmodel
from kith.messaging.domain import (
    Conversation,
    check_accounts_exist,
    check_not_blocked,
    check_shares_niche,
    start_conversation,
)
from kith.messaging.events import ConversationEvent
from kith.messaging.projections import read_inbox
from kith.messaging.readmodel import StoredMessage


class Graph(Protocol):
    def sharing_a_niche(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Those of ``others`` who share at least one niche with ``user_id``."""

    def blocked_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Those of ``others`` with a block, in either direction, with ``user_id``."""


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


class MessagingApplication:
    def __init__(self, store: EventStore, graph: Graph, max_members: int,
                 clock: Callable[[], int] = _now_ms) -> None:
        self.store = store
        self.graph = graph
        self.max_members = max_members
        self.clock = clock
        self.commands = CommandRunner(
            store, conflict_message="the conversation changed concurrently; try again")

    # -- commands ---------------------------------------------------------------------------

    def create_conversation(self, actor_id: str, member_ids: list[str],
                            title: str) -> ConversationView:
        conversation_id = str(uuid.uuid4())
        key = crypto.new_key()
        sealed_title = crypto.encrypt(key, conversation_id, title) if title else None
        event = start_conversation(conversation_id, actor_id, member_ids, sealed_title,
                                   self.max_members, self.clock())
        others = event.member_ids[1:]
        with self.store.pool.connection() as conn:  # a quick answer before asking the graph
            check_accounts_exist(actor_id, readmodel.deleted_among(conn, event.member_ids))
        check_shares_niche(others, self.graph.sharing_a_niche(actor_id, others))
        self._check_no_blocks_among(event.member_ids)

        def record(command: Command) -> ConversationView:
            conn = command.conn
            # Under the account locks, so an erasure cannot miss this conversation.
            readmodel.lock_accounts(conn, event.member_ids, exclusive=False)
            check_accounts_exist(actor_id, readmodel.deleted_among(conn, event.member_ids))
            keys.insert_conversation_key(conn, conversation_id, key)
            readmodel.insert_conversation(conn, event)
            command.append(conversation_id, 0, [to_new_event(event)])
            return ConversationView(conversation_id, title, event.member_ids, actor_id,
                                    event.created_at_ms, 0, 0, 0)

        # A repeat of the command (same command id) answers with the conversation it started.
        return self.commands.run(
            "create_conversation", record, actor_id=actor_id,
            result=ResultCodec[ConversationView](
                lambda view: {"conversation_id": view.id},
                lambda conn, kept: self._view(conn, actor_id, kept["conversation_id"])))

    def send_message(self, actor_id: str, conversation_id: str, client_message_id: str,
                     text: str) -> MessageView:
        """Send, or return the message an earlier attempt with this client id already sent."""
        with self.store.pool.connection() as conn:
            snapshot = self._member_view(conn, conversation_id, actor_id)
            if earlier := readmodel.find_message(conn, conversation_id, actor_id,
                                                 client_message_id):
                return self._message(conn, earlier)
        # The graph is asked before taking the lock; under it, only if someone joined since.
        checked = self._check_sender_blocks(snapshot, actor_id, frozenset())

        def attempt(command: Command) -> MessageView:
            conn = command.conn
            conversation = self._locked(conn, conversation_id, actor_id)
            if earlier := readmodel.find_message(conn, conversation_id, actor_id,
                                                 client_message_id):
                return self._message(conn, earlier)
            self._check_sender_blocks(conversation, actor_id, checked)
            if keys.conversation_key(conn, conversation_id) is None:
                raise NotFound("conversation not found")  # shredded: gone for good
            key = keys.sender_key_for(conn, conversation_id, actor_id)
            sealed = crypto.encrypt(key, keys.text_subject(conversation_id, actor_id), text)
            event = conversation.send(actor_id, str(uuid.uuid4()), client_message_id,
                                      sealed, self.clock())
            readmodel.record_message(conn, event, conversation.version + 1)
            command.append(conversation_id, conversation.version, [to_new_event(event)])
            return MessageView(event.message_id, conversation_id, event.seq, actor_id,
                               client_message_id, text, event.sent_at_ms)

        return self.commands.run("send_message", attempt, actor_id=actor_id)

    def mark_read(self, actor_id: str, conversation_id: str, seq: int) -> None:
        self._mark(actor_id, conversation_id, lambda c: c.mark_read(actor_id, seq, self.clock()))

    def mark_delivered(self, actor_id: str, conversation_id: str, seq: int) -> None:
        self._mark(actor_id, conversation_id,
                   lambda c: c.mark_delivered(actor_id, seq, self.clock()))

    def leave_conversation(self, actor_id: str, conversation_id: str) -> None:
        def attempt(command: Command) -> None:
            conn = command.conn
            conversation = self._locked(conn, conversation_id, actor_id)
            event = conversation.leave(actor_id, self.clock())
            readmodel.remove_member(conn, conversation_id, actor_id, conversation.version + 1)
            command.append(conversation_id, conversation.version, [to_new_event(event)])

        self.commands.run("leave_conversation", attempt, actor_id=actor_id)

    def erase_account(self, conn: psycopg.Connection, user_id: str, deleted_at_ms: int) -> int:
        """Forget a deleted account; return how many conversations it was made to leave.

        Runs in the caller's transaction (the account-deletion projection's). The
        user leaves every conversation (``MemberLeftConversation``, reason
        ``account_deleted``), their sender keys are destroyed (their texts become
        unreadable in the events, on the topic and in exports) and their stored
        texts emptied; the mark keeps them out of new conversations. Idempotent:
        a second run finds nothing left to do.
        """
        def erase(command: Command) -> int:
            tx = command.conn
            readmodel.lock_accounts(tx, [user_id], exclusive=True)
            readmodel.mark_deleted(tx, user_id, deleted_at_ms)
            now = self.clock()
            conversation_ids = readmodel.lock_conversations_of(tx, user_id)
            for conversation_id in conversation_ids:
                conversation = self._member_view(tx, conversation_id, user_id)  # row locked
                event = conversation.remove_deleted_account(user_id, now)
                readmodel.remove_member(tx, conversation_id, user_id, conversation.version + 1)
                command.append(conversation_id, conversation.version, [to_new_event(event)])
            # After the row locks: a send that was under way has committed its key and text.
            keys.destroy_sender_keys(tx, user_id)
            readmodel.erase_texts(tx, user_id)
            return len(conversation_ids)

        return self.commands.run("erase_account", erase, actor_id=user_id, conn=conn)

    # -- queries ----------------------------------------------------------------------------

    def get_conversation(self, actor_id: str, conversation_id: str) -> ConversationView:
        with self.store.pool.connection() as conn:
            return self._view(conn, actor_id, conversation_id)

    def _view(self, conn: psycopg.Connection, actor_id: str,
              conversation_id: str) -> ConversationView:
        conversation = self._member_view(conn, conversation_id, actor_id)
        key = keys.conversation_key(conn, conversation_id)
        return ConversationView(
            conversation.id, keys.open_field(key, conversation.id, conversation.title),
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
            text_keys = keys.senders_keys(conn, conversation_id)
        page = [self._open_message(text_keys, row) for row in rows[:limit]]
        return page, (page[-1].seq if len(rows) > limit else 0)

    def list_conversations(self, actor_id: str, limit: int, cursor: str) -> InboxPage:
        """The caller's inbox (the projection), most recently active first."""
        before = _decode_cursor(cursor) if cursor else None
        with self.store.pool.connection() as conn:
            rows = read_inbox(conn, actor_id, limit + 1, before)
            title_keys = keys.conversation_keys(conn, [r.conversation_id for r in rows])
            text_keys = keys.sender_keys(conn, {(r.conversation_id, r.last_sender_id)
                                                for r in rows if r.last_sender_id})
        items = []
        for row in rows[:limit]:
            last = None
            if row.last_message_id is not None:
                sender = row.last_sender_id or ""
                last = MessageView(row.last_message_id, row.conversation_id, row.last_seq,
                                   sender, row.last_client_message_id or "",
                                   keys.open_text(text_keys, row.conversation_id, sender,
                                                  row.last_text),
                                   row.last_sent_at_ms or 0)
            items.append(InboxItemView(row.conversation_id,
                                       keys.open_field(title_keys.get(row.conversation_id),
                                                       row.conversation_id, row.title),
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
        def attempt(command: Command) -> None:
            conn = command.conn
            conversation = self._locked(conn, conversation_id, actor_id)
            event = decide(conversation)
            if event is None:
                return  # marks only move forward: nothing to record
            conversation.apply(event)
            readmodel.record_marks(conn, conversation, actor_id, conversation.version + 1)
            command.append(conversation_id, conversation.version, [to_new_event(event)])

        self.commands.run("mark", attempt, actor_id=actor_id)

    def _check_sender_blocks(self, conversation: Conversation, actor_id: str,
                             checked: frozenset[str]) -> frozenset[str]:
        """Refuse when the sender and any other member block each other (any size); return
        who was checked (``checked``: members already known to be fine)."""
        others = frozenset(m for m in conversation.members if m != actor_id)
        if others - checked:
            check_not_blocked(self.graph.blocked_among(actor_id, sorted(others)))
        return others | checked

    def _check_no_blocks_among(self, member_ids: list[str]) -> None:
        """Nobody puts two people of whom one blocks the other into one conversation."""
        for i, user_id in enumerate(member_ids[:-1]):
            check_not_blocked(self.graph.blocked_among(user_id, member_ids[i + 1:]))

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

    def _message(self, conn: psycopg.Connection, stored: StoredMessage) -> MessageView:
        pair = (stored.conversation_id, stored.sender_id)
        return self._open_message(keys.sender_keys(conn, [pair]), stored)

    @staticmethod
    def _open_message(text_keys: Mapping[keys.SenderPair, bytes],
                      stored: StoredMessage) -> MessageView:
        return MessageView(stored.id, stored.conversation_id, stored.seq, stored.sender_id,
                           stored.client_message_id,
                           keys.open_text(text_keys, stored.conversation_id, stored.sender_id,
                                          stored.text), stored.sent_at_ms)


def _encode_cursor(updated_at_ms: int, conversation_id: str) -> str:
    return cursors.encode(updated_at_ms, conversation_id)


def _decode_cursor(cursor: str) -> tuple[int, str]:
    at, conversation_id = cursors.decode(cursor, int, uuid.UUID)
    return at, str(conversation_id)
