"""The contract every projection keeps, as a test case to subclass (one per projection).

Modelled on the ``eventsourcing`` library's recorder test cases: the base class holds the
tests, a subclass says how to build its projection, publish a story of events and read the
read model back. Every subclass then shows that

* redelivered records (the same events again, at new offsets) change nothing;
* a reset and a replay from offset zero give the same state (and a reset empties it);
* an account's deletion, replayed after a reset, leaves the same state: nothing of the
  deleted person comes back (live, the deletion arrives in a batch of its own; replayed, in
  the same batches as the person's earlier events — a different path through ``apply``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from kith.common.codec import AvroCodec, default_codec
from kith.common.config import Settings
from kith.common.kafka import consumer_config
from kith.common.projection import Projection, ProjectionRunner
from tests.support.waiting import eventually


class ProjectionContract:
    """Subclass as ``TestXxxProjectionContract`` and implement the six hooks below."""

    service = "post"  # whose database holds the read model

    def projection(self, settings: Settings) -> Projection:
        raise NotImplementedError

    def prepare(self, settings: Settings, dsn: str) -> None:
        """Create the read model's tables (migrations) in ``dsn``."""
        raise NotImplementedError

    def publish_story(self, settings: Settings) -> None:
        """Publish a story of events on the projection's topics (through the real relay)."""
        raise NotImplementedError

    def snapshot(self, conn: psycopg.Connection) -> Any:
        """The whole read model, in a comparable form."""
        raise NotImplementedError

    def person(self) -> str:
        """Someone of the published story of whom the read model keeps something."""
        raise NotImplementedError

    def delete_account(self, settings: Settings, user_id: str) -> None:
        """Publish what the services record when ``user_id`` deletes their account (through
        the real relay, after the story)."""
        raise NotImplementedError

    def personal_data(self, conn: psycopg.Connection, user_id: str) -> Any:
        """Everything the read model keeps of ``user_id`` (empty once they are deleted)."""
        raise NotImplementedError

    def codec(self) -> AvroCodec:
        return default_codec()

    # -- the contract --------------------------------------------------------------------------

    def test_redelivered_records_change_nothing(self, settings: Settings) -> None:
        runner, dsn = self._started(settings)
        try:
            self.publish_story(settings)
            before = self._drained(runner, settings, dsn)
            assert before, "the story left the read model empty: it shows nothing"
            redeliver(settings.require_kafka(), runner.projection.topics)
            assert self._drained(runner, settings, dsn) == before
        finally:
            runner.close()

    def test_a_reset_and_a_replay_from_zero_give_the_same_state(self, settings: Settings
                                                                  ) -> None:
        runner, dsn = self._started(settings)
        try:
            self.publish_story(settings)
            before = self._drained(runner, settings, dsn)
        finally:
            runner.close()
        runner.rebuild()
        with psycopg.connect(dsn) as conn:
            assert not self.snapshot(conn), "reset left part of the read model behind"
        runner.open()
        try:
            assert self._drained(runner, settings, dsn) == before
        finally:
            runner.close()

    def test_a_deletion_replayed_after_a_reset_brings_nothing_back(self, settings: Settings
                                                                   ) -> None:
        runner, dsn = self._started(settings)
        try:
            self.publish_story(settings)
            self._drained(runner, settings, dsn)
            user = self.person()
            with psycopg.connect(dsn) as conn:
                assert self.personal_data(conn, user), "the story kept nothing of the person"
            self.delete_account(settings, user)
            before = self._drained(runner, settings, dsn)
            with psycopg.connect(dsn) as conn:
                assert not self.personal_data(conn, user), "the deletion left data behind"
        finally:
            runner.close()
        runner.rebuild()
        runner.open()
        try:
            assert self._drained(runner, settings, dsn) == before
            with psycopg.connect(dsn) as conn:
                assert not self.personal_data(conn, user), "the replay brought data back"
        finally:
            runner.close()

    # -- helpers -------------------------------------------------------------------------------

    def _started(self, settings: Settings) -> tuple[ProjectionRunner, str]:
        dsn = settings.database_url(self.service)
        self.prepare(settings, dsn)
        projection = self.projection(settings)
        runner = ProjectionRunner(projection, dsn, settings.require_kafka(), self.codec(),
                                  group_id=f"{settings.topic_prefix}contract.{projection.name}")
        runner.open()
        return runner, dsn

    def _drained(self, runner: ProjectionRunner, settings: Settings, dsn: str) -> Any:
        """Step ``runner`` until it has committed every record now on its topics."""
        end = sum(end_offsets(settings.require_kafka(), runner.projection.topics).values())

        def step() -> int:
            runner.step()
            return committed(dsn, runner.projection.name)

        eventually(step, lambda n: n >= end, timeout=60, interval=0, what="the projection")
        assert not runner.holds, f"partitions held: {runner.holds}"
        with psycopg.connect(dsn) as conn:
            return self.snapshot(conn)


def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer(consumer_config(bootstrap, f"contract.probe.{uuid.uuid4().hex}"))
    try:
        ends = {}
        for topic in topics:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                         timeout=10)
                ends[(topic, partition)] = high
        return ends
    finally:
        consumer.close()


def committed(dsn: str, projection: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets"
                           " WHERE projection = %s", (projection,)).fetchone()
    return int(row[0]) if row else 0


def redeliver(bootstrap: str, topics: Sequence[str]) -> int:
    """Publish every record now on ``topics`` once more, unchanged (what a producer retry or
    a relay crash before its checkpoint does); return how many."""
    ends = end_offsets(bootstrap, topics)
    consumer = Consumer(consumer_config(bootstrap, f"contract.copy.{uuid.uuid4().hex}"))
    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    copied = 0
    try:
        consumer.assign([TopicPartition(t, p, 0) for (t, p), end in ends.items() if end])
        wanted = sum(ends.values())
        while copied < wanted:
            msg = consumer.poll(10)
            assert msg is not None, f"only {copied} of {wanted} records read back"
            if msg.error():
                continue
            producer.produce(msg.topic(), key=msg.key(), value=msg.value(),
                             headers=msg.headers(), partition=msg.partition())
            copied += 1
        assert producer.flush(10) == 0
    finally:
        consumer.close()
    return copied
