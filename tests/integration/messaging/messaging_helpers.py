"""Helpers of the messaging integration tests: a running graph + messaging pair and its stubs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer

from kith.common.codec import default_codec
from kith.common.config import Settings
from kith.common.kafka import consumer_config
from kith.protos import graph_pb2, graph_pb2_grpc, messaging_pb2_grpc
from kith.protos import messaging_pb2 as pb

T = TypeVar("T")
MAX_MEMBERS = 4  # small, so the size cap is cheap to reach


@dataclass
class World:
    """Running graph + messaging services and helpers to arrange users between them."""

    graph: graph_pb2_grpc.GraphServiceStub
    messaging: messaging_pb2_grpc.MessagingServiceStub
    settings: Settings

    @property
    def messaging_dsn(self) -> str:
        return self.settings.database_url("messaging")

    def niche_with(self, *users: str) -> str:
        """A niche owned by ``users[0]`` that every one of ``users`` belongs to."""
        niche = self.graph.CreateNiche(graph_pb2.CreateNicheRequest(
            actor_id=users[0], name="circle", kind="friends"))
        if len(users) > 1:
            invite = self.graph.CreateInvite(graph_pb2.CreateInviteRequest(
                actor_id=users[0], niche_id=niche.id, max_uses=len(users)))
            for user in users[1:]:
                self.graph.AcceptInvite(graph_pb2.AcceptInviteRequest(actor_id=user,
                                                                      code=invite.code))
        return niche.id

    def block(self, actor: str, other: str) -> None:
        self.graph.Block(graph_pb2.BlockRequest(actor_id=actor, user_id=other))

    def conversation(self, creator: str, *others: str, title: str = "") -> pb.Conversation:
        return self.messaging.CreateConversation(pb.CreateConversationRequest(
            actor_id=creator, member_ids=list(others), title=title))

    def send(self, actor: str, conversation_id: str, text: str,
             client_message_id: str | None = None) -> pb.Message:
        return self.messaging.SendMessage(pb.SendMessageRequest(
            actor_id=actor, conversation_id=conversation_id,
            client_message_id=client_message_id or uuid.uuid4().hex, text=text))

    def messages(self, actor: str, conversation_id: str, after_seq: int = 0,
                 limit: int = 100) -> list[pb.Message]:
        return list(self.messaging.ListMessages(pb.ListMessagesRequest(
            actor_id=actor, conversation_id=conversation_id, after_seq=after_seq,
            limit=limit)).items)

    def inbox(self, actor: str, limit: int = 0, cursor: str = "") -> pb.ListConversationsResponse:
        return self.messaging.ListConversations(pb.ListConversationsRequest(
            actor_id=actor, limit=limit, cursor=cursor))


def users(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]






def topic_events(settings: Settings, wanted: Callable[[list[tuple[str, dict[str, Any]]]], bool],
                 timeout: float = 20.0) -> list[tuple[str, dict[str, Any]]]:
    """Decoded ``(event_type, data)`` read from messaging.events.v1 until ``wanted`` holds."""
    consumer = Consumer(consumer_config(settings.require_kafka(), f"test-{uuid.uuid4()}"))
    consumer.subscribe([settings.topic("messaging")])
    seen: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    try:
        while not wanted(seen) and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.append(default_codec().decode(msg.value()))
    finally:
        consumer.close()
    assert wanted(seen), f"not on the topic within {timeout} s: {seen}"
    return seen
