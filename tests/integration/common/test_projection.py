"""Projections take effect exactly once: across SIGKILLs, redeliveries and rebuilds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
from confluent_kafka import Producer

from kith.common.codec import MAGIC
from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from kith.common.kafka import event_headers
from kith.common.projection import ProjectionRunner
from kith.common.relay import OutboxRelay
from tests.support.ledger import (
    DEPOSITED,
    LedgerProjection,
    ledger_codec,
    read_balances,
)
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[3]


def record_and_publish(settings: Settings, accounts: int, events: int,
                       republish_from: int | None = None) -> dict[str, tuple[int, int]]:
    """Append deposits and publish them all; return the expected balances and counts."""
    dsn = settings.database_url("post")
    pool = make_pool(dsn)
    store = EventStore(pool, ledger_codec())
    rng = random.Random(7)
    ids = [uuid.uuid4() for _ in range(accounts)]
    versions: Counter[uuid.UUID] = Counter()
    balances: Counter[str] = Counter()
    for _ in range(events):
        account = rng.choice(ids)
        amount = rng.randint(1, 100)
        store.append(account, versions[account],
                     [NewEvent(DEPOSITED, {"account_id": str(account), "amount": amount})])
        versions[account] += 1
        balances[str(account)] += amount
    pool.close()
    relay = OutboxRelay(dsn, settings.kafka_bootstrap, settings.topic("post"), batch_size=500)
    with psycopg.connect(dsn, autocommit=True) as conn:
        while relay.publish_batch(conn):
            pass
        if republish_from is not None:  # what a relay crash before its checkpoint looks like
            conn.execute("INSERT INTO outbox SELECT position FROM events WHERE position > %s",
                         (republish_from,))
            while relay.publish_batch(conn):
                pass
    return {str(a): (balances[str(a)], versions[a]) for a in ids if versions[a]}


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.ledger_worker", settings.database_url("post"),
         settings.kafka_bootstrap, settings.topic("post")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def applied_total(dsn: str) -> int:
    try:
        return sum(n for _, n in read_balances(dsn).values())
    except psycopg.errors.UndefinedTable:
        return 0


def test_a_projection_killed_mid_batch_again_and_again_applies_each_event_once(
    settings: Settings,
) -> None:
    total = 3000
    expected = record_and_publish(settings, accounts=40, events=total, republish_from=1200)
    dsn = settings.database_url("post")
    rng = random.Random(11)
    progress = [0]
    for _ in range(6):
        worker = start_worker(settings)
        deadline = time.monotonic() + 60
        while applied_total(dsn) <= progress[-1] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        progress.append(applied_total(dsn))
    assert progress == sorted(progress) and len(set(progress)) == len(progress), progress
    assert progress[-1] < total, f"every kill should land before the end: {progress}"

    worker = start_worker(settings)
    deadline = time.monotonic() + 120
    while applied_total(dsn) < total and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(1.0)  # a duplicate applied late would show up now
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err.decode()[-2000:]

    assert read_balances(dsn) == expected  # 0 lost, 0 applied twice


def test_a_rebuild_from_offset_zero_reproduces_the_read_model(settings: Settings) -> None:
    expected = record_and_publish(settings, accounts=10, events=400, republish_from=100)
    dsn = settings.database_url("post")
    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    runner = ProjectionRunner(LedgerProjection([settings.topic("post")]), dsn,
                              settings.kafka_bootstrap, ledger_codec(), batch_size=64,
                              group_id=f"{settings.topic_prefix}ledger")

    def run_until_complete() -> None:
        stop = threading.Event()
        thread = threading.Thread(target=runner.run, args=(stop,))
        thread.start()
        deadline = time.monotonic() + 60
        while applied_total(dsn) < 400 and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        thread.join()

    run_until_complete()
    first = read_balances(dsn)
    runner.rebuild()
    assert read_balances(dsn) == {}
    run_until_complete()

    assert first == expected
    assert read_balances(dsn) == expected


def produce_raw(settings: Settings, records: list[tuple[bytes, bytes, list | None]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 3})
    for key, value, headers in records:
        producer.produce(settings.topic("post"), key=key, value=value, headers=headers)
    assert producer.flush(10) == 0


def test_records_that_can_never_apply_go_to_dead_letters_and_the_rest_applies(
    settings: Settings,
) -> None:
    expected = record_and_publish(settings, accounts=1, events=3)
    account = next(iter(expected))
    codec = ledger_codec()
    good = codec.encode(DEPOSITED, {"account_id": account, "amount": 5})
    stream = str(uuid.uuid4())
    produce_raw(settings, [
        (b"not-a-uuid", b"no envelope at all", None),  # a foreign record
        (stream.encode(), good[:12], event_headers(DEPOSITED, uuid.uuid4(), 1, 99, {})),
    ])
    later = record_and_publish(settings, accounts=1, events=2)
    dsn = settings.database_url("post")
    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    runner = ProjectionRunner(LedgerProjection([settings.topic("post")]), dsn,
                              settings.kafka_bootstrap, codec, group_id=settings.topic("post"))
    runner.open()

    def step_and_look() -> tuple[int, list[tuple[bytes, str]]]:
        runner.step()
        with psycopg.connect(dsn) as conn:
            dead = conn.execute("SELECT key, error FROM projection_dead_letters ORDER BY error"
                                ).fetchall()
        return applied_total(dsn), [(bytes(k), e) for k, e in dead]

    try:
        # The good events and the dead letters sit in different partitions, fetched in any
        # order: wait for both, not only for the good events.
        _, dead = eventually(step_and_look, lambda seen: seen[0] == 5 and len(seen[1]) == 2,
                             timeout=30, interval=0)
    finally:
        runner.close()

    assert read_balances(dsn) == {**expected, **later}
    assert [k for k, _ in dead] == [stream.encode(), b"not-a-uuid"]
    assert "corrupt payload" in dead[0][1] and "not a Kith event record" in dead[1][1]


def test_a_record_of_an_unknown_schema_holds_its_partition_instead_of_skipping_it(
    settings: Settings,
) -> None:
    stream = uuid.uuid4()
    unknown = MAGIC + b"\x01" * 8 + b"\x00"
    produce_raw(settings, [(str(stream).encode(), unknown,
                            event_headers("kith.ledger.Future", uuid.uuid4(), 1, 1, {}))])
    dsn = settings.database_url("post")
    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    runner = ProjectionRunner(LedgerProjection([settings.topic("post")]), dsn,
                              settings.kafka_bootstrap, ledger_codec(),
                              group_id=settings.topic("post"))
    runner.open()
    try:
        deadline = time.monotonic() + 30
        while not runner.holds and time.monotonic() < deadline:
            runner.step()
        (hold,) = runner.holds.values()
        assert hold.reason == "unknown_schema" and hold.offset == 0
        assert "unknown schema" in hold.detail.lower() or "schema" in hold.detail
    finally:
        runner.close()
    with psycopg.connect(dsn) as conn:
        offsets = conn.execute("SELECT max(next_offset) FROM projection_offsets").fetchone()[0]
    assert offsets == 0  # nothing was moved past: it applies once the schema is deployed
