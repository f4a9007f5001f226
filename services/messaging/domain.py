"""The conversation aggregate and the rules of messaging; no I/O.

A conversation's stream holds its membership, its messages and its members'
receipts. The aggregate's state is small (members, marks, the last seq), so
the application keeps it as a snapshot row updated in the same transaction as
each append, and rebuilds it from the stream with :meth:`Conversation.replay`.
Title and text arrive here already sealed (ciphertext): the domain never needs
to read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kith.common import text
from kith.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    check,
)
from kith.messaging.events import (
    ACCOUNT_DELETED,
    ConversationCreated,
    ConversationEvent,
    MemberLeftConversation,
    MessagesDelivered,
    MessageSent,
    MessagesRead,
)

TITLE_MAX = 100
TEXT_MAX = 5000
CLIENT_MESSAGE_ID_MAX = 64


# -- value rules ------------------------------------------------------------------------------

def check_title(title: str) -> None:
    """At most TITLE_MAX characters, nothing invisible or reordering (pass it :func:`text.clean`
    first)."""
    check(len(title) <= TITLE_MAX, InvalidArgument(
        "title is too long", details={"title": f"at most {TITLE_MAX} characters"}))
    why = text.problem(title)
    check(why is None, InvalidArgument(f"title {why}", details={"title": why}))


def check_text(text: str, with_photos: bool = False) -> None:
    """1 to TEXT_MAX characters, not only whitespace; a message of photos alone may have none."""
    if with_photos and not text:
        return
    check(0 < len(text) <= TEXT_MAX and not text.isspace(), InvalidArgument(
        "text must be 1 to 5000 characters", details={"text": f"1 to {TEXT_MAX} characters"}))


def check_client_message_id(client_message_id: str) -> None:
    check(0 < len(client_message_id) <= CLIENT_MESSAGE_ID_MAX, InvalidArgument(
        "client_message_id must be 1 to 64 characters",
        details={"client_message_id": f"1 to {CLIENT_MESSAGE_ID_MAX} characters"}))


def member_list(creator_id: str, member_ids: Sequence[str]) -> list[str]:
    """The members of a new conversation: the creator first, then each other id once."""
    members = [creator_id]
    for user_id in member_ids:
        if user_id not in members:
            members.append(user_id)
    return members


def check_conversation_size(size: int, max_members: int) -> None:
    check(size >= 2, InvalidArgument(
        "a conversation needs someone else",
        details={"member_ids": "name at least one other user"}))
    check(size <= max_members, FailedPrecondition(
        f"a conversation has at most {max_members} members", code="conversation_too_large",
        details={"member_ids": f"at most {max_members - 1} besides you"}))


def check_shares_niche(others: Iterable[str], sharing: set[str]) -> None:
    """Everyone invited shares at least one niche with the creator."""
    check(all(user_id in sharing for user_id in others), PermissionDenied(
        "you can only start conversations with people who share a niche with you",
        code="no_shared_niche", details={"member_ids": "each must share a niche with you"}))


def check_accounts_exist(creator_id: str, deleted: set[str]) -> None:
    """Deleted accounts are never added to a conversation (nor start one)."""
    check(not deleted, NotFound(
        "no such user", details={"actor_id" if creator_id in deleted else "member_ids":
                                 "this account was deleted"}))


def check_not_blocked(blocked: set[str]) -> None:
    """No block, in either direction, between the people concerned.

    The refusal never names the block (nor who is involved): ``not_allowed``.
    """
    check(not blocked, PermissionDenied("you cannot do this in this conversation",
                                        code="not_allowed"))


# -- the aggregate ----------------------------------------------------------------------------

@dataclass
class Conversation:
    """Current members (creator first), receipts and the last message seq of one conversation."""

    id: str
    created_by: str
    title: str | None
    created_at_ms: int
    members: list[str]
    last_seq: int = 0
    version: int = 0
    read_seq: dict[str, int] = field(default_factory=dict)
    delivered_seq: dict[str, int] = field(default_factory=dict)

    # -- rebuilding ---------------------------------------------------------------------------

    @classmethod
    def replay(cls, events: Iterable[ConversationEvent]) -> Conversation:
        """The state after ``events`` (the whole stream, in version order)."""
        conversation: Conversation | None = None
        for event in events:
            if isinstance(event, ConversationCreated):
                conversation = cls(event.conversation_id, event.created_by, event.title,
                                   event.created_at_ms, list(event.member_ids))
            elif conversation is None:
                raise ValueError("a conversation stream starts with ConversationCreated")
            else:
                conversation.apply(event)
            conversation.version += 1
        if conversation is None:
            raise ValueError("empty conversation stream")
        return conversation

    def apply(self, event: ConversationEvent) -> None:
        if isinstance(event, MemberLeftConversation):
            self.members = [m for m in self.members if m != event.user_id]
            self.read_seq.pop(event.user_id, None)
            self.delivered_seq.pop(event.user_id, None)
        elif isinstance(event, MessageSent):
            self.last_seq = event.seq
            self._advance(self.read_seq, event.sender_id, event.seq)
            self._advance(self.delivered_seq, event.sender_id, event.seq)
        elif isinstance(event, MessagesRead):
            self._advance(self.read_seq, event.user_id, event.seq)
            self._advance(self.delivered_seq, event.user_id, event.seq)
        elif isinstance(event, MessagesDelivered):
            self._advance(self.delivered_seq, event.user_id, event.seq)

    @staticmethod
    def _advance(marks: dict[str, int], user_id: str, seq: int) -> None:
        marks[user_id] = max(marks.get(user_id, 0), seq)

    # -- queries ------------------------------------------------------------------------------

    def check_member(self, user_id: str) -> None:
        """Non-members are told the conversation does not exist."""
        check(user_id in self.members, NotFound("conversation not found"))

    def direct_peer(self, user_id: str) -> str | None:
        """The other member while exactly two remain: then blocks forbid sending."""
        if len(self.members) != 2:
            return None
        return next(m for m in self.members if m != user_id)

    def unread_count(self, user_id: str) -> int:
        """Sending implies reading, so everything after the read mark is someone else's."""
        return self.last_seq - self.read_seq.get(user_id, 0)

    # -- decisions ----------------------------------------------------------------------------

    def send(self, sender_id: str, message_id: str, client_message_id: str, sealed_text: str,
             now_ms: int) -> MessageSent:
        """The next message, numbered ``last_seq + 1``."""
        self.check_member(sender_id)
        return MessageSent(self.id, message_id, self.last_seq + 1, sender_id, client_message_id,
                           sealed_text, list(self.members), now_ms)

    def mark_read(self, user_id: str, seq: int, now_ms: int) -> MessagesRead | None:
        """Move the read mark forward to ``seq``; ``None`` when it is already there."""
        self._check_mark(user_id, seq)
        if seq <= self.read_seq.get(user_id, 0):
            return None
        return MessagesRead(self.id, user_id, seq, list(self.members), now_ms)

    def mark_delivered(self, user_id: str, seq: int, now_ms: int) -> MessagesDelivered | None:
        """Move the delivery mark forward to ``seq``; ``None`` when it is already there."""
        self._check_mark(user_id, seq)
        if seq <= max(self.delivered_seq.get(user_id, 0), self.read_seq.get(user_id, 0)):
            return None
        return MessagesDelivered(self.id, user_id, seq, list(self.members), now_ms)

    def leave(self, user_id: str, now_ms: int) -> MemberLeftConversation:
        self.check_member(user_id)
        return MemberLeftConversation(self.id, user_id,
                                      [m for m in self.members if m != user_id], now_ms)

    def remove_deleted_account(self, user_id: str, now_ms: int) -> MemberLeftConversation:
        """The leave that identity's ``AccountDeleted`` forces on a member."""
        self.check_member(user_id)
        return MemberLeftConversation(self.id, user_id,
                                      [m for m in self.members if m != user_id], now_ms,
                                      ACCOUNT_DELETED)

    def _check_mark(self, user_id: str, seq: int) -> None:
        self.check_member(user_id)
        check(1 <= seq <= self.last_seq, InvalidArgument(
            "seq is not a message of this conversation",
            details={"seq": f"between 1 and the last seq ({self.last_seq})"}))


def start_conversation(conversation_id: str, creator_id: str, member_ids: Sequence[str],
                       sealed_title: str | None, max_members: int,
                       now_ms: int) -> ConversationCreated:
    """The creation event; sharing a niche and blocks are checked by the caller beforehand."""
    members = member_list(creator_id, member_ids)
    check_conversation_size(len(members), max_members)
    return ConversationCreated(conversation_id, creator_id, members, sealed_title, now_ms)
