"""Identity's AccountDeleted: the user leaves every conversation and their texts are shredded
everywhere (event table, topic, read tables, ListMessages) while everyone else's stay."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import psycopg
from confluent_kafka import Consumer, Producer

from kith.cli.replay import rebuild_projection
from kith.common import crypto
from kith.common.codec import default_codec
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from kith.common.kafka import consumer_config, event_headers, producer_config
from kith.common.relay import OutboxRelay
from kith.messaging.keys import CONVERSATION_KEYS, SENDER_KEYS
from kith.messaging.projections import InboxProjection
from kith.protos import messaging_pb2 as pb
from tests.integration.messaging.messaging_helpers import World, users
from tests.support.rpc import refused
from tests.support.waiting import eventually

ACCOUNT_DELETED = "kith.identity.AccountDeleted"
MESSAGE_SENT = "kith.messaging.MessageSent"
MEMBER_LEFT = "kith.messaging.MemberLeftConversation"


def delete_account(world: World, user_id: str) -> None:
    """Record ``AccountDeleted`` in identity's event store and relay it, as identity does."""
    dsn = world.settings.database_url("identity")
    pool = make_pool(dsn)
    try:
        EventStore(pool, default_codec()).append(uuid.UUID(user_id), 0, [NewEvent(
            ACCOUNT_DELETED, {"user_id": user_id, "deleted_at_ms": int(time.time() * 1000)})])
    finally:
        pool.close()
    relay = OutboxRelay(dsn, world.settings.require_kafka(), world.settings.topic("identity"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        while relay.publish_batch(conn):
            pass


def redeliver_account_deleted(world: World, user_id: str, version: int) -> None:
    """The same deletion again, past the runner's version check (as a replay would be)."""
    payload = default_codec().encode(ACCOUNT_DELETED, {"user_id": user_id,
                                                       "deleted_at_ms": 0})
    producer = Producer(producer_config(world.settings.require_kafka()))
    producer.produce(world.settings.topic("identity"), key=user_id, value=payload,
                     headers=event_headers(ACCOUNT_DELETED, uuid.uuid4(), version, version, {}))
    assert producer.flush(10) == 0


def deletions_consumed(world: World) -> int:
    with psycopg.connect(world.messaging_dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets"
                           " WHERE projection = 'messaging.account_deletions'").fetchone()
    return int(row[0]) if row else 0


def raw_topic(world: World, expected: set[bytes]) -> set[bytes]:
    """The raw values on messaging.events.v1, read until ``expected`` have all arrived."""
    consumer = Consumer(consumer_config(world.settings.require_kafka(), f"test-{uuid.uuid4()}"))
    consumer.subscribe([world.settings.topic("messaging")])
    values: set[bytes] = set()
    deadline = time.monotonic() + 20
    try:
        while not expected <= values and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                values.add(msg.value())
    finally:
        consumer.close()
    return values


def readable(keys: dict[tuple[str, str], bytes], sent: dict[str, Any]) -> bool:
    """Whether any key messaging still holds opens ``sent``'s text."""
    for (conversation_id, user_id), key in keys.items():
        for subject in (f"{conversation_id}/{user_id}", conversation_id):
            try:
                crypto.decrypt(key, subject, sent["text"])
                return True
            except crypto.ShreddedError:
                continue
    return False


def every_key(world: World) -> dict[tuple[str, str], bytes]:
    with psycopg.connect(world.messaging_dsn) as conn:
        rows = conn.execute("SELECT conversation_id::text, user_id::text, key FROM sender_keys"
                            " UNION ALL SELECT conversation_id::text, '', key"
                            " FROM conversation_keys").fetchall()
    # Each stored wrapped under the service's KEK: opened as the service opens them.
    return {(c, u): SENDER_KEYS.unwrap(k, c, u) if u else CONVERSATION_KEYS.unwrap(k, c)
            for c, u, k in rows}


def test_a_deleted_account_leaves_every_conversation_and_its_texts_are_shredded(
        world: World) -> None:
    alice, bob, carol = users(3)
    world.niche_with(alice, bob, carol)
    group = world.conversation(alice, bob, carol, title="Weekend")
    direct = world.conversation(bob, alice)
    left_earlier = world.conversation(bob, carol)
    secrets = {c: f"bob's secret {uuid.uuid4().hex}" for c in (group.id, direct.id,
                                                                 left_earlier.id)}
    world.send(alice, group.id, "alice in the group")
    for conversation_id, secret in secrets.items():
        world.send(bob, conversation_id, secret)
    world.send(carol, group.id, "carol in the group")
    world.send(alice, direct.id, "alice to bob")
    world.messaging.LeaveConversation(pb.LeaveConversationRequest(
        actor_id=bob, conversation_id=left_earlier.id))
    assert world.messages(alice, direct.id)[0].text == secrets[direct.id]

    delete_account(world, bob)

    def members(conversation_id: str) -> list[str]:
        return list(world.messaging.GetConversation(pb.GetConversationRequest(
            actor_id=carol if conversation_id != direct.id else alice,
            conversation_id=conversation_id)).members)

    eventually(lambda: (members(group.id), members(direct.id)),
               lambda m: m == ([alice, carol], [alice]))
    # Redelivered and replayed deletions decide nothing new.
    redeliver_account_deleted(world, bob, version=2)
    eventually(lambda: deletions_consumed(world), lambda n: n >= 2)

    # Bob is gone: no access, no sending, never added again, cannot start anything.
    for conversation_id in secrets:
        status, _, _ = refused(lambda c=conversation_id: world.messages(bob, c))
        assert status == grpc.StatusCode.NOT_FOUND
    status, _, _ = refused(lambda: world.send(bob, group.id, "still here?"))
    assert status == grpc.StatusCode.NOT_FOUND
    assert refused(lambda: world.conversation(alice, carol, bob)) == (
        grpc.StatusCode.NOT_FOUND, "not_found", {"member_ids": "this account was deleted"})
    assert refused(lambda: world.conversation(bob, alice))[2] == {
        "actor_id": "this account was deleted"}

    # The others' messages stay readable; bob's keep their place, with empty text.
    assert [(m.sender_id, m.text) for m in world.messages(carol, group.id)] == [
        (alice, "alice in the group"), (bob, ""), (carol, "carol in the group")]
    assert [(m.sender_id, m.text) for m in world.messages(alice, direct.id)] == [
        (bob, ""), (alice, "alice to bob")]
    assert [m.text for m in world.messages(carol, left_earlier.id)] == [""]
    assert world.messaging.GetConversation(pb.GetConversationRequest(
        actor_id=alice, conversation_id=group.id)).title == "Weekend"
    listed = b"".join(world.messaging.ListMessages(pb.ListMessagesRequest(
        actor_id=reader, conversation_id=c, limit=100)).SerializeToString()
        for reader, c in ((carol, group.id), (alice, direct.id), (carol, left_earlier.id)))
    inbox = eventually(lambda: world.inbox(carol),
                       lambda page: all(bob not in i.members for i in page.items))
    assert all(s.encode() not in listed + inbox.SerializeToString() for s in secrets.values())

    # The event log: bob left each conversation he was in once, for this reason; every text
    # he sent is ciphertext that no key messaging holds can open any more.
    codec = default_codec()
    with psycopg.connect(world.messaging_dsn) as conn:
        payloads = [bytes(p) for (p,) in conn.execute("SELECT payload FROM events")]
        stored_texts = conn.execute("SELECT text FROM messages WHERE sender_id = %s",
                                    (bob,)).fetchall()
        inbox_texts = conn.execute("SELECT last_text FROM inbox WHERE last_sender_id = %s",
                                   (bob,)).fetchall()
    assert stored_texts == [("",)] * 3 and all(t == (None,) for t in inbox_texts)
    events = [codec.decode(p) for p in payloads]
    forced = sorted(d["conversation_id"] for t, d in events
                    if t == MEMBER_LEFT and d["reason"] == "account_deleted")
    assert forced == sorted([group.id, direct.id])
    keys = every_key(world)
    assert not any(user_id == bob for _, user_id in keys)
    sent = [d for t, d in events if t == MESSAGE_SENT]
    assert len(sent) == 6
    assert not any(readable(keys, d) for d in sent if d["sender_id"] == bob)
    assert all(readable(keys, d) for d in sent if d["sender_id"] != bob)
    assert all(s.encode() not in p for s in secrets.values() for p in payloads)

    # The topic carries the same bytes: nothing of bob's is readable there either.
    on_topic = raw_topic(world, set(payloads))
    assert on_topic == set(payloads)

    # A rebuilt inbox brings none of bob's texts back.
    def inbox_rows() -> list[tuple]:
        with psycopg.connect(world.messaging_dsn) as conn:
            return conn.execute("SELECT * FROM inbox ORDER BY user_id, conversation_id").fetchall()

    before = eventually(inbox_rows, lambda rows: len(rows) == 4 and all(
        str(r[0]) != bob and bob not in r[3] for r in rows))
    rebuild_projection(InboxProjection(world.settings.topic("messaging")), world.messaging_dsn,
                       world.settings.require_kafka(), default_codec())
    assert inbox_rows() == before
    assert sum(str(r[7]) == bob for r in before) == 1 and all(
        r[9] is None for r in before if str(r[7]) == bob)
    assert all(s.encode() not in v for s in secrets.values() for v in on_topic)


def test_creates_and_sends_racing_a_deletion_leave_nothing_behind(world: World) -> None:
    alice, bob = users(2)
    world.niche_with(alice, bob)
    base = world.conversation(alice, bob)
    created: list[str] = []
    refusals: dict[str, set[grpc.StatusCode]] = {"create": set(), "send": set()}
    stop = threading.Event()

    def keep_trying(kind: str, call: Callable[[], Any]) -> None:
        deadline = time.monotonic() + 20
        while not (stop.is_set() and refusals[kind]) and time.monotonic() < deadline:
            try:
                result = call()
            except grpc.RpcError as exc:
                refusals[kind].add(exc.code())
                continue
            if kind == "create":
                created.append(result.id)

    with ThreadPoolExecutor(2) as pool:
        racers = [pool.submit(keep_trying, "create", lambda: world.conversation(alice, bob)),
                  pool.submit(keep_trying, "send", lambda: world.send(bob, base.id, "racing"))]
        delete_account(world, bob)
        eventually(lambda: list(world.messaging.GetConversation(pb.GetConversationRequest(
            actor_id=alice, conversation_id=base.id)).members), lambda m: m == [alice])
        stop.set()
        for racer in racers:
            racer.result()

    # A create that won the race was erased with the rest; later ones were refused.
    assert refusals["send"] == {grpc.StatusCode.NOT_FOUND}
    assert refusals["create"] <= {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED}
    with psycopg.connect(world.messaging_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM conversation_members WHERE user_id = %s",
                            (bob,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM sender_keys WHERE user_id = %s",
                            (bob,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM messages WHERE sender_id = %s AND text <> ''",
                            (bob,)).fetchone() == (0,)
    assert all(list(world.messaging.GetConversation(pb.GetConversationRequest(
        actor_id=alice, conversation_id=c)).members) == [alice] for c in created)
