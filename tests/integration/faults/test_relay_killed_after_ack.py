"""Fault: the relay is SIGKILLed after Kafka acknowledged a batch and before it recorded that.
The batch goes out again (duplicates on the topic: the fault fired) and the read model, fed by
a worker throughout, still equals the event-store oracle: nothing applied twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import psycopg

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from tests.integration.faults.oracle import ledger_oracle
from tests.support.kafka import read_topic
from tests.support.ledger import DEPOSITED, ledger_codec, read_balances
from tests.support.processes import REPO


def spawn(module: str, settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module, settings.database_url("post"),
         settings.require_kafka(), settings.topic("post"), *args],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_relay_killed_between_ack_and_checkpoint_duplicates_on_the_topic_only(
        settings: Settings) -> None:
    dsn, topic = settings.database_url("post"), settings.topic("post")
    pool = make_pool(dsn, max_size=2)
    store = EventStore(pool, ledger_codec())
    rng = random.Random(3)
    accounts = [uuid.uuid4() for _ in range(25)]
    versions: Counter[uuid.UUID] = Counter()
    for _ in range(300):
        account = rng.choice(accounts)
        store.append(account, versions[account], [NewEvent(
            DEPOSITED, {"account_id": str(account), "amount": rng.randint(1, 50)})])
        versions[account] += 1
    pool.close()

    worker = spawn("tests.support.ledger_worker", settings)
    blocker = psycopg.connect(dsn)
    try:
        # Hold the outbox rows: the relay publishes, Kafka acknowledges, its DELETE waits.
        blocker.execute("SELECT position FROM outbox FOR UPDATE")
        relay = spawn("tests.support.relay_worker", settings)
        acked = read_topic(settings.require_kafka(), topic, 300)
        assert len(acked) == 300
        relay.send_signal(signal.SIGKILL)
        relay.wait(10)
        with psycopg.connect(dsn, autocommit=True) as admin:  # its DELETE dies with it
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND wait_event_type = 'Lock'")
        blocker.rollback()
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 300

        restarted = time.monotonic()
        relay = spawn("tests.support.relay_worker", settings)
        expected = ledger_oracle(dsn, ledger_codec())
        deadline = restarted + 60
        while read_balances(dsn) != expected or _outbox(dsn):
            assert time.monotonic() < deadline, "did not converge"
            time.sleep(0.2)
        converged = time.monotonic() - restarted
        records = read_topic(settings.require_kafka(), topic, 600)
        assert len(records) == 600 and len({r.event_id for r in records}) == 300  # fired
        time.sleep(1.0)
        assert read_balances(dsn) == expected  # each event applied once
        print(f"outbox empty and read model equal to the oracle {converged:.1f} s after the "
              "relay restarted")
        relay.send_signal(signal.SIGTERM)
        relay.wait(30)
    finally:
        blocker.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def _outbox(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
