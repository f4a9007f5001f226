"""The outbox relay: every committed event reaches Kafka, each stream in order."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict

import psycopg
import pytest

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import ConcurrencyError, EventStore, NewEvent
from kith.common.relay import RELAY_LEADER_LOCK, OutboxRelay
from tests.support.kafka import read_topic
from tests.support.ledger import DEPOSITED, ledger_codec


class Rollback(Exception):
    """Raised on purpose to abort a transaction after its append (leaves a position gap)."""


def test_concurrent_writers_with_slow_commits_lose_nothing_and_keep_stream_order(
    settings: Settings,
) -> None:
    dsn = settings.database_url("post")
    topic = settings.topic("post")
    pool = make_pool(dsn, max_size=12)
    store = EventStore(pool, ledger_codec())
    streams = [uuid.uuid4() for _ in range(6)]
    writers, commands_each = 8, 30
    barrier = threading.Barrier(writers + 1)

    relay = OutboxRelay(dsn, settings.kafka_bootstrap, topic, batch_size=7, idle_wait_s=0.05)
    stop = threading.Event()
    relay_thread = threading.Thread(target=relay.run, args=(stop,))
    relay_thread.start()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for i in range(commands_each):
            stream = rng.choice(streams)
            while True:
                try:
                    with store.transaction() as conn:
                        version = len(store.load(stream, conn))
                        store.append(
                            stream,
                            version,
                            [
                                NewEvent(
                                    DEPOSITED,
                                    {"account_id": str(stream), "amount": i, "memo": f"w{seed}"},
                                )
                                for _ in range(rng.randint(1, 3))
                            ],
                            conn=conn,
                        )
                        time.sleep(rng.random() * 0.004)  # a slow commit, lock held
                        if rng.random() < 0.1:
                            raise Rollback
                    break
                except ConcurrencyError:
                    continue
                except Rollback:
                    break

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()

    with psycopg.connect(dsn) as conn:
        committed = conn.execute(
            "SELECT event_id, stream_id, version FROM events ORDER BY position"
        ).fetchall()
        gaps = conn.execute("SELECT max(position) - count(*) FROM events").fetchone()[0]
    assert gaps > 0, "the test should roll some appends back, leaving position gaps"

    records = read_topic(settings.kafka_bootstrap, topic, expect_at_least=len(committed))
    stop.set()
    relay_thread.join()
    pool.close()

    assert {r.event_id for r in records} == {e[0] for e in committed}
    seen: dict[uuid.UUID, list[int]] = defaultdict(list)
    for record in records:  # partition order; one stream lives in one partition
        seen[record.stream_id].append(record.version)
    for stream, versions in seen.items():
        deduplicated = [v for i, v in enumerate(versions) if v > max(versions[:i], default=0)]
        assert deduplicated == list(range(1, len(deduplicated) + 1)), stream
    assert relay.published >= len(committed)


@pytest.mark.parametrize("restarts", [3])
def test_a_restarted_relay_resumes_with_what_is_left_in_the_outbox(
    settings: Settings, restarts: int
) -> None:
    dsn = settings.database_url("post")
    topic = settings.topic("post")
    pool = make_pool(dsn)
    store = EventStore(pool, ledger_codec())
    stream = uuid.uuid4()
    total = 0
    for round_ in range(restarts):
        store.append(
            stream,
            total,
            [
                NewEvent(DEPOSITED, {"account_id": "a", "amount": round_, "memo": ""})
                for _ in range(5)
            ],
        )
        total += 5
        relay = OutboxRelay(dsn, settings.kafka_bootstrap, topic)
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert relay.backlog(conn) == 5
            assert relay.publish_batch(conn) == 5
            assert relay.backlog(conn) == 0
            assert relay.publish_batch(conn) == 0
    pool.close()

    records = read_topic(settings.kafka_bootstrap, topic, expect_at_least=total)
    assert [r.version for r in records] == list(range(1, total + 1))


def test_only_one_relay_publishes_at_a_time(settings: Settings) -> None:
    dsn = settings.database_url("post")
    with psycopg.connect(dsn, autocommit=True) as leader:
        leader.execute("SELECT pg_advisory_lock(%s)", (RELAY_LEADER_LOCK,))
        relay = OutboxRelay(dsn, settings.kafka_bootstrap, settings.topic("post"))
        stop = threading.Event()
        store = EventStore(make_pool(dsn), ledger_codec())
        store.append(uuid.uuid4(), 0, [NewEvent(DEPOSITED, {"account_id": "a", "amount": 1})])
        thread = threading.Thread(target=relay.run, args=(stop,))
        thread.start()
        time.sleep(1.5)
        assert relay.published == 0  # standing by while another relay leads
        leader.execute("SELECT pg_advisory_unlock(%s)", (RELAY_LEADER_LOCK,))
        deadline = time.monotonic() + 10
        while relay.published == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        thread.join()
        store.pool.close()
    assert relay.published == 1
