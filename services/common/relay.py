"""The outbox relay: publishes a service's committed events to its Kafka topic.

It reads the events the ``outbox`` table still lists, in position order,
produces each keyed by stream id with an idempotent producer, waits for every
acknowledgement, then deletes those outbox rows. Publication is at-least-once
(a crash between acknowledgement and delete republishes a batch); consumers
drop redelivered events by stream version.

Skipping is impossible: an event leaves the outbox only once Kafka has it,
however late its transaction committed (see :mod:`kith.common.eventstore` for
why per-stream order still holds). Only one relay per database publishes at a
time (a session advisory lock); others stand by, so a relay can run beside
every replica of a service.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from confluent_kafka import KafkaError, Producer

from kith.common import metrics, tracing
from kith.common.kafka import event_headers, producer_config

log = logging.getLogger(__name__)
RELAY_LEADER_LOCK = 0x72656C6179  # "relay"
NOTIFY_CHANNEL = "kith_events"


class RelayError(RuntimeError):
    """Kafka did not acknowledge a batch; nothing was checkpointed."""


class OutboxRelay:
    def __init__(self, dsn: str, bootstrap: str, topic: str, batch_size: int = 5000,
                 idle_wait_s: float = 0.5, **producer_overrides: Any) -> None:
        self.dsn = dsn
        self.topic = topic
        self.batch_size = batch_size
        self.idle_wait_s = idle_wait_s
        self._producer_config = producer_config(bootstrap, **producer_overrides)
        self._producer: Producer | None = None
        self.published = 0

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; stand by while another relay holds leadership."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    if not conn.execute("SELECT pg_try_advisory_lock(%s)",
                                        (RELAY_LEADER_LOCK,)).fetchone()[0]:
                        stop.wait(1.0)
                        continue
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    log.info("relay for %s is publishing", self.topic)
                    while not stop.is_set():
                        if self.publish_batch(conn) < self.batch_size:
                            self._wait_for_appends(conn)
            except (psycopg.OperationalError, RelayError) as exc:
                log.warning("relay for %s: %s; retrying", self.topic, exc)
                self._reset_producer()
                stop.wait(1.0)
        if self._producer is not None:
            self._producer.flush(10)

    def publish_batch(self, conn: psycopg.Connection) -> int:
        """Publish the oldest batch of the outbox; return how many events it held."""
        rows = conn.execute(
            "SELECT e.position, e.stream_id, e.version, e.event_id, e.event_type, e.payload,"
            " e.metadata FROM outbox o JOIN events e ON e.position = o.position"
            " ORDER BY o.position LIMIT %s",
            (self.batch_size,),
        ).fetchall()
        if not rows:
            metrics.observe_relay(self.topic, 0, 0)
            return 0
        producer = self._get_producer()
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                errors.append(err)

        for position, stream_id, version, event_id, event_type, payload, metadata in rows:
            while True:
                try:
                    producer.produce(self.topic, key=str(stream_id).encode(), value=payload,
                                     headers=tracing.produce_headers(
                                         self.topic, metadata, event_headers(
                                             event_type, event_id, version, position,
                                             metadata)),
                                     on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
        remaining = producer.flush(30)
        if errors or remaining:
            raise RelayError(f"{len(errors)} delivery errors, {remaining} unacknowledged: "
                             f"{errors[:1]}")
        conn.execute("DELETE FROM outbox WHERE position = ANY(%s)", ([r[0] for r in rows],))
        self.published += len(rows)
        metrics.observe_relay(self.topic, len(rows), 0 if len(rows) < self.batch_size
                              else self._max_position(conn) - rows[-1][0])
        return len(rows)

    def backlog(self, conn: psycopg.Connection) -> int:
        """Events recorded but not yet published (for metrics and tests)."""
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]

    @staticmethod
    def _max_position(conn: psycopg.Connection) -> int:
        return conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]

    def _wait_for_appends(self, conn: psycopg.Connection) -> None:
        """Sleep until an append commits (NOTIFY) or ``idle_wait_s`` passes."""
        for _ in conn.notifies(timeout=self.idle_wait_s, stop_after=1):
            pass

    def _get_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._producer_config)
        return self._producer

    def _reset_producer(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
