"""The lag gate of a local view (``ProjectionFreshness``), against a real broker and database.

The gate says "current" only once the projection has applied everything its topic held,
and it asks the brokers only while someone asks it: an idle service sends no rounds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Producer

from kith.common.config import Settings
from kith.common.freshness import ProjectionFreshness
from tests.support.waiting import eventually

VIEW = "test.view"


@pytest.fixture
def gate(settings: Settings) -> Iterator[ProjectionFreshness]:
    found = ProjectionFreshness(VIEW, [settings.topic("graph")], settings.database_url("post"),
                                settings.require_kafka(), max_lag_s=0.15, rest_after_s=0.5)
    stop = threading.Event()
    runner = threading.Thread(target=found.run, args=(stop,), daemon=True)
    runner.start()
    yield found
    stop.set()
    runner.join(5)


def applied(settings: Settings, partition: int, next_offset: int) -> None:
    """Record that the view applied ``partition`` up to ``next_offset`` (as its runner does)."""
    with psycopg.connect(settings.database_url("post"), autocommit=True) as conn:
        conn.execute("INSERT INTO projection_offsets VALUES (%s, %s, %s, %s)"
                      " ON CONFLICT (projection, topic, partition)"
                      " DO UPDATE SET next_offset = EXCLUDED.next_offset",
                      (VIEW, settings.topic("graph"), partition, next_offset))


def test_the_gate_opens_only_once_the_view_applied_what_the_topic_holds(
        settings: Settings, gate: ProjectionFreshness) -> None:
    eventually(gate.current, what="an empty topic: the view is current")

    producer = Producer({"bootstrap.servers": settings.require_kafka()})
    producer.produce(settings.topic("graph"), b"an event", partition=1)
    assert producer.flush(10) == 0
    time.sleep(0.5)  # several rounds have seen the event the view has not applied
    assert not gate.current()

    applied(settings, 1, 1)
    eventually(gate.current, what="the view caught up: current again")


def test_an_idle_gate_sends_no_rounds_and_wakes_when_asked(gate: ProjectionFreshness) -> None:
    eventually(gate.current, what="the gate in use is current")

    time.sleep(0.5 + 0.3)  # not asked for longer than rest_after_s
    resting = gate.rounds
    time.sleep(0.5)
    assert gate.rounds == resting, "rounds went on with nobody asking"
    assert not gate.current(), "a gate that stopped asking must not vouch"

    eventually(gate.current, what="asked again, the gate resumes its rounds")
    assert gate.rounds > resting
