"""Fault: the Kafka broker SIGKILLed for a minute while writes keep coming, then restarted.

A load thread appends to the event store throughout (every append that returned is an
acknowledged write); a relay and a projection worker run beside it. While the broker is
down the outbox grows and the relay's backlog gauge says so; once the broker is back, the
outbox drains, every stored event reaches the topic and the read model equals the oracle
computed from the event store: nothing lost, nothing applied twice.
"""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from pathlib import Path

import psycopg

from kith.common.config import Settings
from kith.common.infra.kafka import ensure_topics
from kith_dev.infra.kafka import EmbeddedKafka
from kith_dev.infra.processes import free_port
from tests.integration.faults.oracle import ledger_oracle
from tests.integration.faults.pipeline import Load, outbox, spawn
from tests.support.kafka import count_records, read_topic
from tests.support.ledger import LedgerProjection, ledger_codec, read_balances
from tests.support.processes import REPO

OUTAGE_S = 60.0
RECOVERY_BOUND_S = 60.0


def backlog_gauge(port: int, topic: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    found = re.search(rf'kith_relay_backlog_events{{topic="{re.escape(topic)}"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_a_broker_killed_for_a_minute_under_load_loses_and_repeats_nothing(
        settings: Settings, tmp_path: Path) -> None:
    broker = EmbeddedKafka(tmp_path / "kafka", free_port(), free_port(), heap="256m",
                           lib_dir=REPO / ".kith" / "kafka" / "lib", die_with_parent=True)
    bootstrap = broker.start()
    dsn, topic = settings.database_url("post"), settings.topic("post")
    ensure_topics(bootstrap, [topic], 4)
    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    gauge_port = free_port()
    relay = spawn("tests.support.relay_worker", dsn, bootstrap, topic, gauge_port)
    worker = spawn("tests.support.ledger_worker", dsn, bootstrap, topic)
    load = Load(dsn)
    load.start()
    try:
        deadline = time.monotonic() + 60
        while not read_balances(dsn):  # the pipeline flows before the fault
            assert time.monotonic() < deadline, "nothing applied before the fault"
            time.sleep(0.2)

        assert broker._proc is not None
        broker._proc.send_signal(signal.SIGKILL)
        broker._proc.wait(10)
        down_at, before, peak_gauge = time.monotonic(), len(load.acknowledged), 0.0
        while time.monotonic() - down_at < OUTAGE_S:
            time.sleep(2)
            peak_gauge = max(peak_gauge, backlog_gauge(gauge_port, topic))
        during = len(load.acknowledged) - before
        assert during > 0 and peak_gauge >= 0.5 * during, (  # sampled every 2 s
            f"the backlog gauge peaked at {peak_gauge} while {during} writes waited")

        broker.start()
        back_at = time.monotonic()
        time.sleep(5)  # writes keep coming while the pipeline catches up
        load.stop.set()
        load.join(10)
        expected = ledger_oracle(dsn, ledger_codec())
        assert set(expected) == load.acknowledged  # every acknowledged write is stored
        stored, drained = len(expected), None
        while read_balances(dsn) != expected or outbox(dsn):
            if drained is None and not outbox(dsn):
                drained = time.monotonic() - back_at
            assert time.monotonic() - back_at < RECOVERY_BOUND_S, (
                f"not converged {RECOVERY_BOUND_S:.0f} s after the broker came back "
                f"(outbox {outbox(dsn)})")
            time.sleep(0.2)
        recovered = time.monotonic() - back_at
        drained = recovered if drained is None else drained
        on_topic = count_records(bootstrap, topic)  # duplicates included: read them all
        records = read_topic(bootstrap, topic, on_topic, timeout_s=60)
        assert len({r.event_id for r in records}) == stored  # every event reached its topic
        time.sleep(1.0)
        assert read_balances(dsn) == expected  # and was applied once
        duplicates = on_topic - stored  # re-sent, dropped by the worker
        print(f"{during} writes acknowledged during the {OUTAGE_S:.0f} s outage "
              f"(backlog gauge peaked at {peak_gauge:.0f}); outbox empty {drained:.1f} s and "
              f"read model equal to the oracle {recovered:.1f} s after the broker came back; "
              f"{stored} events, {duplicates} duplicate records on the topic")
    finally:
        load.stop.set()
        for process in (relay, worker):
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        broker.stop()
