"""Projections: Kafka → Postgres read models with exactly-once effect.

A :class:`ProjectionRunner` consumes its topics in a consumer group and applies
each polled batch in one Postgres transaction together with the partitions'
next offsets. On (re)assignment it seeks to the offsets stored in Postgres, so
a crash at any point replays exactly what was not committed.

Two guards make the effect exactly-once:

* the batch's offset rows are locked (``FOR UPDATE``) and messages below the
  stored offset are dropped, which fences off a consumer that lost its
  partition in a rebalance while it still held a polled batch;
* ``projection_streams`` keeps each stream's last applied version, so an event
  the relay published twice (at-least-once) is dropped by version.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from kith.common import metrics, tracing
from kith.common.codec import AvroCodec, CodecError, UnknownSchemaError
from kith.common.kafka import EventEnvelope, consumer_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """A decoded event handed to a projection."""

    envelope: EventEnvelope
    type: str
    data: dict[str, Any]

    @property
    def stream_id(self) -> uuid.UUID:
        return self.envelope.stream_id


class Projection(Protocol):
    """A read model fed from event topics."""

    name: str
    topics: Sequence[str]

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        """Apply a batch of new events (in partition order) inside the open transaction."""

    def reset(self, conn: psycopg.Connection) -> None:
        """Empty the read model, for a rebuild from offset zero."""


class ProjectionRunner:
    def __init__(self, projection: Projection, dsn: str, bootstrap: str, codec: AvroCodec,
                 batch_size: int = 2000, poll_timeout_s: float = 0.1,
                 group_id: str | None = None, instance_id: str | None = None,
                 **consumer_overrides: Any) -> None:
        """``instance_id`` turns on static group membership: a restarted instance with the
        same id takes its partitions back at once instead of after the session timeout."""
        self.projection = projection
        self.dsn = dsn
        self.codec = codec
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.group_id = group_id or f"projection.{projection.name}"
        if instance_id:
            consumer_overrides.setdefault("group.instance.id", instance_id)
        self._config = consumer_config(bootstrap, self.group_id, **consumer_overrides)
        self._conn: psycopg.Connection | None = None
        self._consumer: Consumer | None = None
        self.applied = 0
        self.batches = 0
        self._lag = metrics.LagSampler(self._config["group.id"])

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume and apply until ``stop`` is set."""
        self.open()
        try:
            while not stop.is_set():
                self.step()
        finally:
            self.close()

    def open(self) -> None:
        self._conn = psycopg.connect(self.dsn, autocommit=False)
        self._consumer = Consumer(self._config)
        self._consumer.subscribe(list(self.projection.topics), on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_revoke)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def step(self) -> int:
        """Poll one batch and apply it; return how many new events took effect."""
        assert self._consumer is not None and self._conn is not None
        self._lag.sample(self._consumer)
        # Block for the first message only, then take whatever else is already fetched:
        # low latency when idle, large batches under load.
        first = self._consumer.poll(self.poll_timeout_s)
        if first is None:
            return 0
        messages = [first, *self._consumer.consume(self.batch_size - 1, 0)]
        good = []
        for msg in messages:
            err = msg.error()
            if err is None:
                good.append(msg)
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("projection %s: consumer error %s", self.projection.name, err)
        if not good:
            return 0
        started = time.perf_counter()
        applied = self._apply(good)
        metrics.observe_projection_batch(self.projection.name, len(good), applied,
                                         time.perf_counter() - started)
        # Best effort, for lag monitoring only: the source of truth is Postgres.
        self._consumer.commit(offsets=self._next_offsets(good), asynchronous=True)
        return applied

    def rebuild(self) -> None:
        """Forget offsets and stream versions and empty the read model: replay from zero."""
        with psycopg.connect(self.dsn) as conn, conn.transaction():
            self.projection.reset(conn)
            conn.execute("DELETE FROM projection_offsets WHERE projection = %s",
                         (self.projection.name,))
            conn.execute("DELETE FROM projection_streams WHERE projection = %s",
                         (self.projection.name,))

    # -- internals ---------------------------------------------------------------------------

    def _apply(self, messages: list) -> int:
        conn = self._conn
        assert conn is not None
        name = self.projection.name
        with conn.transaction():
            keys = sorted({(m.topic(), m.partition()) for m in messages})
            stored = {
                (t, p): o for t, p, o in conn.execute(
                    "SELECT topic, partition, next_offset FROM projection_offsets"
                    " WHERE projection = %s AND (topic, partition) IN"
                    " (SELECT * FROM unnest(%s::text[], %s::int[]))"
                    " ORDER BY topic, partition FOR UPDATE",
                    (name, [k[0] for k in keys], [k[1] for k in keys]),
                )
            }
            fresh = [m for m in messages if m.offset() >= stored.get((m.topic(), m.partition()), 0)]
            dead: list[tuple[Message, str]] = []
            records: list[tuple[Message, EventEnvelope]] = []
            for msg in fresh:
                try:
                    records.append((msg, EventEnvelope.from_message(msg)))
                except (KeyError, ValueError, TypeError, AttributeError) as exc:
                    dead.append((msg, f"not a Kith event record: {exc!r}"))
            last = dict(conn.execute(
                "SELECT stream_id, version FROM projection_streams"
                " WHERE projection = %s AND stream_id = ANY(%s)",
                (name, list({env.stream_id for _, env in records})),
            ).fetchall())
            events: list[Event] = []
            for msg, env in records:
                if env.version <= last.get(env.stream_id, 0):
                    continue  # redelivered by the at-least-once relay
                last[env.stream_id] = env.version
                try:
                    event_type, data = self.codec.decode(env.payload)
                except UnknownSchemaError:
                    raise  # stop here (and retry) rather than skip: the reader lacks a schema
                except CodecError as exc:
                    dead.append((msg, str(exc)))
                    continue
                events.append(Event(env, event_type, data))
            if dead:
                self._bury(conn, dead)
                metrics.DEAD_LETTERS.labels(name).inc(len(dead))
            if events:
                with tracing.consume_spans(name, [m for m, _ in records]):
                    self.projection.apply(conn, events)
                touched = {e.stream_id: last[e.stream_id] for e in events}
                conn.execute(  # one statement for the whole batch: this is on the hot path
                    "INSERT INTO projection_streams (projection, stream_id, version)"
                    " SELECT %s, s, v FROM unnest(%s::uuid[], %s::int[]) AS t(s, v)"
                    " ON CONFLICT (projection, stream_id) DO UPDATE SET version = EXCLUDED.version",
                    (name, list(touched), list(touched.values())),
                )
            if fresh:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO projection_offsets (projection, topic, partition, next_offset)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (projection, topic, partition)"
                        " DO UPDATE SET next_offset = EXCLUDED.next_offset",
                        [(name, tp.topic, tp.partition, tp.offset)
                         for tp in self._next_offsets(fresh)],
                    )
        self.applied += len(events)
        self.batches += 1
        return len(events)

    def _bury(self, conn: psycopg.Connection, dead: list[tuple[Message, str]]) -> None:
        """Keep records that can never be applied in the dead-letter table, and move on."""
        for msg, error in dead:
            log.error("projection %s: dead letter at %s/%d/%d: %s", self.projection.name,
                      msg.topic(), msg.partition(), msg.offset(), error)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO projection_dead_letters (projection, topic, partition, \"offset\","
                " error, key, payload) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(self.projection.name, m.topic(), m.partition(), m.offset(), error, m.key(),
                  m.value()) for m, error in dead],
            )

    @staticmethod
    def _next_offsets(messages: list) -> list[TopicPartition]:
        top: dict[tuple[str, int], int] = {}
        for m in messages:
            key = (m.topic(), m.partition())
            top[key] = max(top.get(key, -1), m.offset())
        return [TopicPartition(t, p, o + 1) for (t, p), o in top.items()]

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            # Rows to lock from the first batch on (see the fencing in _apply).
            conn.cursor().executemany(
                "INSERT INTO projection_offsets (projection, topic, partition, next_offset)"
                " VALUES (%s, %s, %s, 0) ON CONFLICT DO NOTHING",
                [(self.projection.name, tp.topic, tp.partition) for tp in partitions],
            )
            stored = {
                (t, p): o for t, p, o in conn.execute(
                    "SELECT topic, partition, next_offset FROM projection_offsets"
                    " WHERE projection = %s", (self.projection.name,))
            }
        for tp in partitions:
            tp.offset = stored.get((tp.topic, tp.partition)) or OFFSET_BEGINNING
        consumer.incremental_assign(partitions)
        log.info("projection %s assigned %d partitions", self.projection.name, len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.incremental_unassign(partitions)
