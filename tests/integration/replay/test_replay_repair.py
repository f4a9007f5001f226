"""The topic is rebuilt from the event store: a recreated topic stops its projection with a
clear reason instead of fencing new records off, `kith replay republish` puts the store's
events back on the topic, `kith replay reset-offsets` points the projection at them, and the
read model ends up exact — every event once. `kith replay skip` leaves an audit record."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from confluent_kafka import KafkaException

from kith.cli.replay.command import main
from kith.common.config import Settings
from kith.common.infra.kafka import delete_topics, ensure_topics
from kith.common.projection import ProjectionRunner
from tests.integration.replay.ledger_events import Ledger
from tests.support.ledger import LedgerProjection, ledger_codec, read_balances
from tests.support.waiting import eventually


@pytest.fixture
def operator_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KITH_PG_DSN", settings.pg_dsn or "")
    monkeypatch.setenv("KITH_DB_PREFIX", settings.db_prefix)
    monkeypatch.setenv("KITH_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("KITH_KAFKA_BOOTSTRAP", settings.require_kafka())
    return settings


def recreate(settings: Settings, topic: str) -> None:
    delete_topics(settings.require_kafka(), [topic])
    deadline = time.monotonic() + 60
    while True:
        try:
            ensure_topics(settings.require_kafka(), [topic], settings.topic_partitions)
            return
        except KafkaException:  # still being deleted
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run_in_thread(runner: ProjectionRunner) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_a_recreated_topic_is_republished_from_the_event_store_and_the_projection_heals(
        ledger: Ledger, operator_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = operator_env
    dsn = settings.database_url("post")
    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    ledger.append(80, accounts=12)
    ledger.publish()
    runner = ProjectionRunner(LedgerProjection([ledger.topic]), dsn, settings.require_kafka(),
                              ledger_codec(), group_id=f"{settings.topic_prefix}ledger")
    stop, thread = run_in_thread(runner)
    eventually(lambda: read_balances(dsn), lambda b: b == ledger.expected(), timeout=60)
    stop.set()
    thread.join(30)

    recreate(settings, ledger.topic)  # the log is gone; the store still holds every event
    ledger.append(12, accounts=12)
    ledger.publish()  # new records at the offsets the projection had already passed

    stop, thread = run_in_thread(runner)
    try:
        eventually(lambda: [h.reason for h in runner.holds.values()],
                   lambda reasons: "offset_beyond_log" in reasons, timeout=60)
        assert read_balances(dsn) != ledger.expected()

        assert main(["republish", "post"]) == 0
        republished = json.loads(capsys.readouterr().out)
        assert republished["queued"] == 92
        assert main(["reset-offsets", "post", "ledger", "--topic", "post"]) == 0
        reset_at = time.monotonic()
        eventually(lambda: read_balances(dsn), lambda b: b == ledger.expected(), timeout=60)
        print(f"healed {time.monotonic() - reset_at:.1f} s after the offsets were reset")
        eventually(lambda: dict(runner.holds), lambda holds: not holds, timeout=20)
    finally:
        stop.set()
        thread.join(30)
    assert read_balances(dsn) == ledger.expected()  # every event once


def test_skipping_a_held_record_needs_a_reason_and_leaves_an_audit_record(
        ledger: Ledger, operator_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = operator_env
    dsn = settings.database_url("post")
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO projection_offsets VALUES ('ledger', %s, 2, 7)",
                     (ledger.topic,))
    assert main(["skip", "post", "ledger", "--topic", "post", "--partition", "2",
                 "--offset", "6", "--reason", "wrong"]) == 1
    assert "stands at 7" in capsys.readouterr().err
    assert main(["skip", "post", "ledger", "--topic", "post", "--partition", "2",
                 "--offset", "7", "--reason", "ticket 42: payload from a broken producer"]) == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT next_offset FROM projection_offsets").fetchone() == (8,)
        (error,) = conn.execute("SELECT error FROM projection_dead_letters"
                                " WHERE \"offset\" = 7").fetchone()
    assert error == "skipped by an operator: ticket 42: payload from a broken producer"
