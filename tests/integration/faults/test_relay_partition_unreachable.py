"""Fault: one partition's leader frozen (SIGSTOP) — its messages neither acknowledged nor
refused — while the relay publishes to a two-broker cluster.

The topic has two partitions, partition 0 on broker 1 and partition 1 on broker 2
(replication 1). With broker 2 frozen, events of partition-0 streams keep reaching the
topic within seconds (they used to wait behind the frozen partition's batch for up to
30 s), nothing already acknowledged is sent again, and once broker 2 is back every event
arrives, each stream in version order. When broker 2 stays away past
``message.timeout.ms``, its events are retried later and none is lost.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from kith.common.kafka import EventEnvelope
from kith.common.metrics import RELAY_HELD_STREAMS, RELAY_IN_FLIGHT
from kith.common.relay import OutboxRelay
from kith_dev.infra.kafka import EmbeddedKafka
from kith_dev.infra.processes import free_port
from tests.support.ledger import DEPOSITED, ledger_codec
from tests.support.processes import REPO

PROMPT_S = 5.0  # partition-0 events reach the topic this soon with broker 2 frozen


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedKafka, ...]]:
    """Broker 1 (also the KRaft controller) and broker 2 of one cluster, for this module."""
    home = tmp_path_factory.mktemp("two-brokers")
    first = EmbeddedKafka(home / "1", free_port(), free_port(), heap="256m",
                          lib_dir=REPO / ".kith" / "kafka" / "lib", die_with_parent=True)
    first.start()
    second = first.add_broker(home / "2", free_port())
    try:
        second.start()
        admin = AdminClient({"bootstrap.servers": first.bootstrap})
        deadline = time.monotonic() + 60
        while len(admin.list_topics(timeout=5).brokers) < 2:
            assert time.monotonic() < deadline, "broker 2 did not join the cluster"
            time.sleep(0.5)
        yield first, second
    finally:
        if second.process is not None:
            second.process.send_signal(signal.SIGCONT)
        second.stop()
        first.stop()


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (librdkafka ``murmur2_random``) picks."""
    m, h = 0x5BD1E995, (0x9747B28C ^ len(key)) & 0xFFFFFFFF
    whole = len(key) - len(key) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(key[i:i + 4], "little") * m & 0xFFFFFFFF
        k = (k ^ (k >> 24)) * m & 0xFFFFFFFF
        h = (h * m & 0xFFFFFFFF) ^ k
    tail = key[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = (h ^ tail[0]) * m & 0xFFFFFFFF
    h = (h ^ (h >> 13)) * m & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def streams_of(partition: int, count: int) -> list[uuid.UUID]:
    found: list[uuid.UUID] = []
    while len(found) < count:
        stream = uuid.uuid4()
        if murmur2_partition(str(stream).encode(), 2) == partition:
            found.append(stream)
    return found


class Ledger:
    """Deposits into accounts (one stream each), remembering every event's stream version."""

    def __init__(self, dsn: str) -> None:
        self.pool = make_pool(dsn, max_size=2)
        self.store = EventStore(self.pool, ledger_codec())
        self.versions: dict[uuid.UUID, int] = {}

    def deposit(self, *streams: uuid.UUID) -> None:
        for stream in streams:
            version = self.versions.get(stream, 0)
            self.store.append(stream, version, [NewEvent(
                DEPOSITED, {"account_id": str(stream), "amount": version + 1})])
            self.versions[stream] = version + 1

    def events_of(self, streams: list[uuid.UUID]) -> int:
        return sum(self.versions[s] for s in streams)


def split_topic(bootstrap: str) -> str:
    """A topic with partition 0 on broker 1 and partition 1 on broker 2."""
    topic = f"split.{uuid.uuid4().hex[:8]}.events.v1"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 2, replica_assignment=[[1], [2]])]).values():
        future.result(30)
    return topic


def read(bootstrap: str, topic: str, partitions: list[int], expect: int,
         timeout_s: float) -> list[EventEnvelope]:
    """The records of ``partitions`` from the start, once ``expect`` distinct events came (or
    the time is up): an assigned consumer without a group, so that a frozen group coordinator
    cannot stall it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "log_level": 2})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records: list[EventEnvelope] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len({r.event_id for r in records}) < expect and time.monotonic() < deadline:
            records += [EventEnvelope.from_message(m) for m in consumer.consume(1000, 0.1)
                        if m.error() is None]
        records += [EventEnvelope.from_message(m) for m in consumer.consume(1000, 0.5)
                    if m.error() is None]  # and any duplicate already behind them
    finally:
        consumer.close()
    return records


def assert_each_stream_in_order(records: list[EventEnvelope], ledger: Ledger,
                                streams: list[uuid.UUID]) -> None:
    """Every event of ``streams`` arrived; a stream's first sightings are versions 1, 2, …"""
    first_seen: dict[uuid.UUID, list[int]] = {}
    for record in records:
        seen = first_seen.setdefault(record.stream_id, [])
        if record.version not in seen:
            seen.append(record.version)
    for stream in streams:
        assert first_seen.get(stream) == list(range(1, ledger.versions[stream] + 1)), stream


def relay_thread(dsn: str, bootstrap: str, topic: str,
                 **producer: Any) -> tuple[threading.Thread, threading.Event]:
    relay = OutboxRelay(dsn, bootstrap, topic, idle_wait_s=0.05, **producer)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def test_a_frozen_partition_holds_back_no_other_and_repeats_nothing(
        settings: Settings, brokers: tuple[EmbeddedKafka, ...]) -> None:
    first, second = brokers
    bootstrap = f"{first.bootstrap},{second.bootstrap}"
    topic = split_topic(bootstrap)
    ledger = Ledger(settings.database_url("post"))
    on_0, on_1 = streams_of(0, 4), streams_of(1, 2)
    thread, stop = relay_thread(settings.database_url("post"), bootstrap, topic,
                                **{"message.timeout.ms": 20_000})
    assert second.process is not None
    try:
        ledger.deposit(on_0[0], on_1[0])  # the pipeline flows before the fault
        assert len(read(bootstrap, topic, [0, 1], 2, 30)) == 2

        second.process.send_signal(signal.SIGSTOP)
        ledger.deposit(on_1[0], on_1[1], on_1[0])  # in flight to the frozen broker
        time.sleep(0.5)
        frozen = time.monotonic()
        for _ in range(3):
            ledger.deposit(*on_0)
        records = read(first.bootstrap, topic, [0], ledger.events_of(on_0), 40)
        took = time.monotonic() - frozen
        print(f"{ledger.events_of(on_0)} partition-0 events on the topic {took:.1f} s after "
              "they were written, broker 2 frozen")
        assert {r.partition for r in records} == {0}
        assert len({r.event_id for r in records}) == ledger.events_of(on_0)
        assert took <= PROMPT_S, f"partition-0 events waited {took:.1f} s behind partition 1"
        assert RELAY_IN_FLIGHT.labels(topic)._value.get() >= 2  # partition 1's, still waiting

        second.process.send_signal(signal.SIGCONT)
        everything = ledger.events_of(on_0 + on_1)
        records = read(bootstrap, topic, [0, 1], everything, 60)
        print(f"after broker 2 came back: {len(records)} records for {everything} events")
        assert_each_stream_in_order(records, ledger, on_0 + on_1)
        assert {r.partition for r in records if r.stream_id in on_1} == {1}
        zero = [r.event_id for r in records if r.partition == 0]
        assert len(zero) == len(set(zero)), "a partition-0 event was sent again"
    finally:
        second.process.send_signal(signal.SIGCONT)
        stop.set()
        thread.join(60)
        ledger.pool.close()


def test_a_partition_away_past_the_message_timeout_is_retried_and_loses_nothing(
        settings: Settings, brokers: tuple[EmbeddedKafka, ...]) -> None:
    first, second = brokers
    bootstrap = f"{first.bootstrap},{second.bootstrap}"
    topic = split_topic(bootstrap)
    ledger = Ledger(settings.database_url("post"))
    on_0, on_1 = streams_of(0, 2), streams_of(1, 3)
    thread, stop = relay_thread(settings.database_url("post"), bootstrap, topic,
                                **{"message.timeout.ms": 2_000, "request.timeout.ms": 1_500})
    assert second.process is not None
    try:
        ledger.deposit(*on_0, *on_1)
        assert len(read(bootstrap, topic, [0, 1], 5, 30)) == 5

        second.process.send_signal(signal.SIGSTOP)
        held = RELAY_HELD_STREAMS.labels(topic)
        for _ in range(2):
            ledger.deposit(*on_1, *on_0)
        deadline = time.monotonic() + 15
        while held._value.get() == 0:  # timed out: held back, to be retried
            assert time.monotonic() < deadline, "no stream held back after its timeout"
            time.sleep(0.1)
        ledger.deposit(*on_0, *on_1)  # while those wait, partition 0 still flows
        records = read(first.bootstrap, topic, [0], ledger.events_of(on_0), 10)
        assert len({r.event_id for r in records}) == ledger.events_of(on_0)
        time.sleep(4)  # away well past message.timeout.ms: retried more than once

        second.process.send_signal(signal.SIGCONT)
        back = time.monotonic()
        everything = ledger.events_of(on_0 + on_1)
        records = read(bootstrap, topic, [0, 1], everything, 60)
        print(f"{len({r.event_id for r in records})} of {everything} events on the topic "
              f"{time.monotonic() - back:.1f} s after broker 2 came back "
              f"({len(records)} records)")
        assert_each_stream_in_order(records, ledger, on_0 + on_1)
        assert len({r.event_id for r in records}) == everything
    finally:
        second.process.send_signal(signal.SIGCONT)
        stop.set()
        thread.join(60)
        ledger.pool.close()
