"""Fault: a record of a schema no reader has yet lands on one partition while two workers
share the topic under a steady load. The other partitions keep flowing; once the schema
ships, the held record applies exactly once. Checked against the event-store oracle."""

from __future__ import annotations

import random
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import psycopg
from confluent_kafka import Producer

from kith.common.codec import AvroCodec, SchemaRegistry
from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from kith.common.kafka import event_headers
from kith.common.relay import OutboxRelay
from tests.integration.faults.oracle import ledger_oracle
from tests.support.kafka import read_topic
from tests.support.ledger import DEPOSITED, SCHEMAS, ledger_codec, read_balances
from tests.support.processes import REPO

REFUNDED = "kith.ledger.Refunded"
REFUNDED_SCHEMA = ('{"type": "record", "name": "Refunded", "namespace": "kith.ledger",'
                   ' "fields": [{"name": "account_id", "type": "string"},'
                   ' {"name": "amount", "type": "long"}]}')


def workers(settings: Settings, schemas: Path | None) -> list:
    import os
    import subprocess
    import sys

    args = [] if schemas is None else [str(schemas)]
    return [subprocess.Popen(
        [sys.executable, "-m", "tests.support.ledger_worker", settings.database_url("post"),
         settings.require_kafka(), settings.topic("post"), f"worker-{n}", *args],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in (1, 2)]


def stop_all(procs: list) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(30)


def test_a_poisoned_partition_holds_alone_and_applies_once_when_its_schema_ships(
        settings: Settings, tmp_path: Path) -> None:
    dsn, topic = settings.database_url("post"), settings.topic("post")
    future = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, future)
    (future / "ledger" / "Refunded.v1.avsc").write_text(REFUNDED_SCHEMA)
    future_codec = AvroCodec(SchemaRegistry(future))

    relay = OutboxRelay(dsn, settings.require_kafka(), topic, idle_wait_s=0.05)
    stop = threading.Event()
    threading.Thread(target=relay.run, args=(stop,), daemon=True).start()
    running = workers(settings, None)
    pool = make_pool(dsn, max_size=2)
    store = EventStore(pool, ledger_codec())
    try:
        # The poison: a refund of a schema the workers do not know, on partition 0.
        poisoned = str(uuid.uuid4())
        producer = Producer({"bootstrap.servers": settings.require_kafka(), "log_level": 3})
        producer.produce(topic, key=poisoned.encode(), partition=0,
                         value=future_codec.encode(REFUNDED, {"account_id": poisoned,
                                                              "amount": 7}),
                         headers=event_headers(REFUNDED, uuid.uuid4(), 1, 0, {}))
        assert producer.flush(10) == 0

        # A steady load over 40 accounts for ~4 s.
        rng = random.Random(5)
        accounts = [uuid.uuid4() for _ in range(40)]
        versions = {a: 0 for a in accounts}
        ends = time.monotonic() + 4
        while time.monotonic() < ends:
            account = rng.choice(accounts)
            store.append(account, versions[account], [NewEvent(
                DEPOSITED, {"account_id": str(account), "amount": rng.randint(1, 9)})])
            versions[account] += 1
        load_done = time.monotonic()
        oracle = ledger_oracle(dsn, ledger_codec())
        records = read_topic(settings.require_kafka(), topic, sum(versions.values()) + 1)
        partition_of = {str(r.stream_id): r.partition for r in records}
        flowing = {a: v for a, v in oracle.items() if partition_of[a] != 0}
        held = {a for a in oracle if partition_of[a] == 0}
        assert flowing and held

        deadline = load_done + 30
        while not all(read_balances(dsn).get(a) == v for a, v in flowing.items()):
            assert time.monotonic() < deadline, "the healthy partitions did not catch up"
            time.sleep(0.2)
        flowing_s = time.monotonic() - load_done
        with psycopg.connect(dsn) as conn:
            (stuck_at,) = conn.execute(
                "SELECT next_offset FROM projection_offsets WHERE topic = %s AND partition = 0",
                (topic,)).fetchone()
        assert stuck_at == 0  # held at the poisoned record, nothing behind it skipped
        assert not any(a in read_balances(dsn) for a in held)

        # The schema ships: the workers restart with it.
        stop_all(running)
        shipped = time.monotonic()
        running = workers(settings, future)
        expected = ledger_oracle(dsn, ledger_codec(), [(poisoned, REFUNDED, 7)])
        deadline = shipped + 60
        while read_balances(dsn) != expected:
            assert time.monotonic() < deadline, "the held partition did not resume"
            time.sleep(0.2)
        resumed_s = time.monotonic() - shipped
        time.sleep(1.0)  # anything applied twice would show now
        assert read_balances(dsn) == expected
        assert expected[poisoned] == (-7, 1)
        print(f"healthy partitions at lag 0 {flowing_s:.1f} s after the load; "
              f"held partition applied {resumed_s:.1f} s after the schema shipped")
    finally:
        stop.set()
        stop_all(running)
        pool.close()
