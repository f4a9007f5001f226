"""Fault: the topic's partitions are raised 4 → 8 while streams keep writing, so a stream's
early events sit in one partition and its later ones in another; a full rebuild of the read
model then equals the event-store oracle (every stream applied in version order)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter

import psycopg
from confluent_kafka.admin import AdminClient, NewPartitions

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from kith.common.projection import ProjectionRunner
from kith.common.relay import OutboxRelay
from tests.integration.faults.oracle import ledger_oracle
from tests.support.kafka import read_topic
from tests.support.ledger import DEPOSITED, LedgerProjection, ledger_codec, read_balances


def test_a_rebuild_after_the_partition_count_grew_equals_the_oracle(settings: Settings) -> None:
    dsn, topic, bootstrap = settings.database_url("post"), settings.topic("post"), \
        settings.require_kafka()
    pool = make_pool(dsn, max_size=2)
    store = EventStore(pool, ledger_codec())
    relay = OutboxRelay(dsn, bootstrap, topic, idle_wait_s=0.05)
    rng = random.Random(8)
    accounts = [uuid.uuid4() for _ in range(30)]
    versions: Counter[uuid.UUID] = Counter()

    def write(count: int) -> None:
        for _ in range(count):
            account = rng.choice(accounts)
            store.append(account, versions[account], [NewEvent(
                DEPOSITED, {"account_id": str(account), "amount": rng.randint(1, 99)})])
            versions[account] += 1
        with psycopg.connect(dsn, autocommit=True) as conn:
            while relay.publish_batch(conn):
                pass

    try:
        write(300)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_partitions([NewPartitions(topic, 8)])[topic].result(30)
        time.sleep(2)  # producers learn of the new partitions from fresh metadata
        relay._reset_producer()
        write(300)
    finally:
        pool.close()
    records = read_topic(bootstrap, topic, 600)
    moved = {r.stream_id for r in records if r.partition >= 4}
    assert moved, "some streams' later events landed in the new partitions"

    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    runner = ProjectionRunner(LedgerProjection([topic]), dsn, bootstrap, ledger_codec(),
                              batch_size=50, group_id=f"{settings.topic_prefix}ledger")
    runner.rebuild()
    expected = ledger_oracle(dsn, ledger_codec())
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        while read_balances(dsn) != expected:
            assert time.monotonic() - started < 90, "the rebuild did not converge"
            time.sleep(0.2)
        print(f"rebuilt over 8 partitions in {time.monotonic() - started:.1f} s")
    finally:
        stop.set()
        thread.join(30)
    assert read_balances(dsn) == expected
