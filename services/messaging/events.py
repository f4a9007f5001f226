"""Messaging events: type names, payloads as dataclasses, and the dict mapping.

Each dataclass mirrors the newest Avro schema in ``schemas/messaging/<Name>.v<N>.avsc``
field for field, so the mapping is ``asdict`` one way and ``cls(**data)`` the
other (the codec reads older versions into the newest, filling defaults). Every
event lives in its conversation's stream, so one Kafka partition carries a
conversation's whole history in order. ``title`` holds ciphertext
(``kith.common.crypto``) under the conversation's key, ``text`` under the key of
its (conversation, sender) pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from kith.common.events import from_data as common_from_data

LEFT = "left"  # MemberLeftConversation.reason: the member chose to leave
ACCOUNT_DELETED = "account_deleted"  # ...: identity deleted the account


@dataclass(frozen=True)
class ConversationCreated:
    TYPE: ClassVar[str] = "kith.messaging.ConversationCreated"
    conversation_id: str
    created_by: str
    member_ids: list[str]
    title: str | None
    created_at_ms: int


@dataclass(frozen=True)
class MemberLeftConversation:
    TYPE: ClassVar[str] = "kith.messaging.MemberLeftConversation"
    conversation_id: str
    user_id: str
    member_ids: list[str]
    left_at_ms: int
    reason: str = LEFT


@dataclass(frozen=True)
class MessageSent:
    TYPE: ClassVar[str] = "kith.messaging.MessageSent"
    conversation_id: str
    message_id: str
    seq: int
    sender_id: str
    client_message_id: str
    text: str
    member_ids: list[str]
    sent_at_ms: int


@dataclass(frozen=True)
class MessagesRead:
    TYPE: ClassVar[str] = "kith.messaging.MessagesRead"
    conversation_id: str
    user_id: str
    seq: int
    member_ids: list[str]
    read_at_ms: int


@dataclass(frozen=True)
class MessagesDelivered:
    TYPE: ClassVar[str] = "kith.messaging.MessagesDelivered"
    conversation_id: str
    user_id: str
    seq: int
    member_ids: list[str]
    delivered_at_ms: int


ConversationEvent = (ConversationCreated | MemberLeftConversation | MessageSent | MessagesRead
                     | MessagesDelivered)
EVENT_TYPES: dict[str, type[ConversationEvent]] = {
    cls.TYPE: cls
    for cls in (ConversationCreated, MemberLeftConversation, MessageSent, MessagesRead,
                MessagesDelivered)
}


def from_data(event_type: str, data: dict[str, Any]) -> ConversationEvent:
    """The dataclass of a decoded payload (fields added by later schemas are ignored)."""
    return common_from_data(EVENT_TYPES, event_type, data)
