"""Fault: one of two workers is frozen (SIGSTOP) past its session timeout, five times, under a
steady load. Its partitions move to the other worker; when it thaws, its stale batch is
fenced off. Committed offsets never move backwards and the read model equals the oracle."""

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

import psycopg

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from kith.common.relay import OutboxRelay
from tests.integration.faults.oracle import ledger_oracle
from tests.support.ledger import DEPOSITED, ledger_codec, read_balances
from tests.support.processes import REPO

FREEZE_S = 12.0  # past the 10 s session timeout


def test_a_worker_frozen_past_its_session_timeout_five_times_loses_and_repeats_nothing(
        settings: Settings) -> None:
    dsn, topic = settings.database_url("post"), settings.topic("post")
    workers = [subprocess.Popen(
        [sys.executable, "-m", "tests.support.ledger_worker", dsn, settings.require_kafka(),
         topic, f"worker-{n}"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in (1, 2)]
    stop = threading.Event()
    relay = OutboxRelay(dsn, settings.require_kafka(), topic, idle_wait_s=0.05)
    threads = [threading.Thread(target=relay.run, args=(stop,), daemon=True)]
    backwards: list[str] = []

    def watch_offsets() -> None:
        seen: dict[int, int] = {}
        while not stop.is_set():
            try:
                with psycopg.connect(dsn) as conn:
                    rows = conn.execute("SELECT partition, next_offset FROM projection_offsets"
                                        " WHERE topic = %s", (topic,)).fetchall()
            except psycopg.Error:
                continue
            for partition, offset in rows:
                if offset < seen.get(partition, 0):
                    backwards.append(f"{partition}: {seen[partition]} -> {offset}")
                seen[partition] = max(offset, seen.get(partition, 0))
            time.sleep(0.1)

    def load() -> None:
        pool = make_pool(dsn, max_size=2)
        store = EventStore(pool, ledger_codec())
        rng = random.Random(9)
        accounts = [uuid.uuid4() for _ in range(40)]
        versions: Counter[uuid.UUID] = Counter()
        while not stop.is_set():
            account = rng.choice(accounts)
            store.append(account, versions[account], [NewEvent(
                DEPOSITED, {"account_id": str(account), "amount": rng.randint(1, 9)})])
            versions[account] += 1
            time.sleep(0.01)
        pool.close()

    threads += [threading.Thread(target=watch_offsets, daemon=True),
                threading.Thread(target=load, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        for round_ in range(5):
            frozen = workers[round_ % 2]
            frozen.send_signal(signal.SIGSTOP)
            time.sleep(FREEZE_S)
            frozen.send_signal(signal.SIGCONT)
            time.sleep(1.0)
        stop.set()  # the load ends; the relay and workers drain
        for thread in threads:
            thread.join(30)
        with psycopg.connect(dsn, autocommit=True) as conn:
            while relay.publish_batch(conn):
                pass
        expected = ledger_oracle(dsn, ledger_codec())
        ended = time.monotonic()
        while read_balances(dsn) != expected:
            assert time.monotonic() - ended < 60, "the workers did not converge"
            time.sleep(0.2)
        print(f"converged {time.monotonic() - ended:.1f} s after the last thaw and the load end")
        time.sleep(1.0)
        assert read_balances(dsn) == expected
        assert backwards == []
    finally:
        stop.set()
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
