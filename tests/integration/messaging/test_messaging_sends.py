"""Sends: idempotent under concurrent retries, gap-free under concurrent senders, encrypted."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psycopg
import pytest

from kith.common import crypto
from kith.common.codec import default_codec
from kith.messaging.keys import CONVERSATION_KEYS, SENDER_KEYS
from kith.protos import messaging_pb2 as pb
from tests.integration.messaging.messaging_helpers import World, topic_events, users

T = TypeVar("T")
MESSAGE_SENT = "kith.messaging.MessageSent"


def all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run ``calls`` on their own threads, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def stored_events(world: World, conversation_id: str) -> list[tuple[str, bytes]]:
    with psycopg.connect(world.messaging_dsn) as conn:
        return conn.execute("SELECT event_type, payload FROM events WHERE stream_id = %s"
                            " ORDER BY version", (conversation_id,)).fetchall()


def test_concurrent_retries_store_one_message(world: World) -> None:
    alice, bob = users(2)
    world.niche_with(alice, bob)
    conversation = world.conversation(alice, bob)
    world.send(bob, conversation.id, "first")

    retries = all_at_once([lambda: world.send(alice, conversation.id, "only once", "retry-1")] * 8)
    assert len({(m.id, m.seq) for m in retries}) == 1
    assert retries[0].seq == 2 and retries[0].text == "only once"
    again = world.send(alice, conversation.id, "a different body is ignored", "retry-1")
    assert (again.id, again.text, again.sent_at_ms) == (retries[0].id, "only once",
                                                        retries[0].sent_at_ms)
    # The client id is the sender's own: another sender may reuse it.
    assert world.send(bob, conversation.id, "mine", "retry-1").seq == 3

    assert [m.seq for m in world.messages(alice, conversation.id)] == [1, 2, 3]
    types = [t for t, _ in stored_events(world, conversation.id)]
    assert types.count(MESSAGE_SENT) == 3


def test_concurrent_senders_get_gap_free_sequences(world: World) -> None:
    members = users(3)
    world.niche_with(*members)
    conversation = world.conversation(*members)
    per_sender = 8

    def burst(sender: str) -> Callable[[], list[int]]:
        return lambda: [world.send(sender, conversation.id, f"{sender[:4]} {i}").seq
                        for i in range(per_sender)]

    seqs = all_at_once([burst(m) for m in members] * 2)
    total = per_sender * len(seqs)
    for own in seqs:
        assert own == sorted(own), "one sender's messages are numbered in send order"
    assert sorted(s for own in seqs for s in own) == list(range(1, total + 1))

    listed = world.messages(members[1], conversation.id, limit=100)
    assert [m.seq for m in listed] == list(range(1, total + 1))
    page = world.messaging.ListMessages(pb.ListMessagesRequest(
        actor_id=members[2], conversation_id=conversation.id, after_seq=10, limit=5))
    assert [m.seq for m in page.items] == [11, 12, 13, 14, 15] and page.next_after_seq == 15
    last = world.messaging.ListMessages(pb.ListMessagesRequest(
        actor_id=members[2], conversation_id=conversation.id, after_seq=total - 2, limit=5))
    assert len(last.items) == 2 and last.next_after_seq == 0

    codec = default_codec()
    sent = [codec.decode(p)[1] for t, p in stored_events(world, conversation.id)
            if t == MESSAGE_SENT]
    assert [e["seq"] for e in sent] == list(range(1, total + 1)), "stream order = seq order"


def test_text_is_encrypted_in_the_event_store_and_on_the_topic(world: World) -> None:
    alice, bob = users(2)
    world.niche_with(alice, bob)
    conversation = world.conversation(alice, bob, title="Secret plans")
    secret = f"the surprise party is at {uuid.uuid4().hex}"
    message = world.send(alice, conversation.id, secret)
    assert message.text == secret

    codec = default_codec()
    stored = stored_events(world, conversation.id)
    assert all(secret.encode() not in p and b"Secret plans" not in p for _, p in stored)
    created, sent = (codec.decode(p)[1] for _, p in stored)
    assert crypto.is_encrypted(created["title"]) and crypto.is_encrypted(sent["text"])
    with psycopg.connect(world.messaging_dsn) as conn:
        title_key = conn.execute("SELECT key FROM conversation_keys WHERE conversation_id = %s",
                                 (conversation.id,)).fetchone()[0]
        text_key = conn.execute("SELECT key FROM sender_keys WHERE conversation_id = %s"
                                " AND user_id = %s", (conversation.id, alice)).fetchone()[0]
        assert secret not in str(conn.execute("SELECT text FROM messages").fetchall())
    # The title under the conversation's key, the text under the (conversation, sender) key.
    title_key = CONVERSATION_KEYS.unwrap(title_key, conversation.id)  # stored wrapped
    text_key = SENDER_KEYS.unwrap(text_key, conversation.id, alice)
    assert crypto.decrypt(title_key, conversation.id, created["title"]) == "Secret plans"
    assert crypto.decrypt(text_key, f"{conversation.id}/{alice}", sent["text"]) == secret
    with pytest.raises(crypto.ShreddedError):
        crypto.decrypt(title_key, conversation.id, sent["text"])

    on_topic = topic_events(world.settings, lambda seen: any(t == MESSAGE_SENT for t, _ in seen))
    published = next(d for t, d in on_topic if t == MESSAGE_SENT)
    assert published["text"] == sent["text"] and published["member_ids"] == [alice, bob]

    # Shredding a key makes every copy unreadable; the service degrades to empty text.
    with psycopg.connect(world.messaging_dsn) as conn:
        conn.execute("DELETE FROM sender_keys WHERE conversation_id = %s", (conversation.id,))
    assert world.messages(bob, conversation.id)[0].text == ""
    assert world.messaging.GetConversation(pb.GetConversationRequest(
        actor_id=bob, conversation_id=conversation.id)).title == "Secret plans"
