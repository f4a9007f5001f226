"""Projections: Kafka → Postgres read models with exactly-once effect.

A :class:`ProjectionRunner` consumes its topics in a consumer group and applies
each polled batch in one Postgres transaction together with the partitions'
next offsets. On (re)assignment it seeks to the offsets stored in Postgres, so
a crash at any point replays exactly what was not committed.

Guards that make the effect exactly-once, and never silently lossy:

* the batch's offset rows are locked (``FOR UPDATE``) and messages below the
  stored offset are dropped, which fences off a consumer that lost its
  partition in a rebalance while it still held a polled batch;
* ``projection_streams`` keeps each stream's last applied version *and event id*.
  A redelivery (an older version, or the same event at the last version) is
  dropped; the next version applies; anything else holds the partition back:
  a **gap** (a later version than the next) — during a rebuild the missing
  events may sit in another partition (the partition count grew), so the partition
  waits and is retried, which applies every stream in version order — or a
  **conflict** (another event at a version already applied);
* a stored offset above the end of its partition (the topic lost records or was
  recreated) holds that partition until an operator repairs it
  (``offset_beyond_log``), instead of fencing off the new records at those offsets;
* an unknown schema (``unknown_schema``) or an exception in ``apply`` (``poison``)
  holds only its partition; the other partitions keep flowing.

A held partition is paused at the offending offset, counted in
``kith_projection_holds_total`` and shown in ``kith_projection_held_partitions``,
and retried with back-off (all but ``offset_beyond_log``). Transient failures
(database restarted, broker away) are retried inside :meth:`ProjectionRunner.run`
with back-off and jitter. Runbooks: docs/operations.md, "Stop-with-alert conditions".
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from kith.common import metrics, tracing
from kith.common.codec import AvroCodec, CodecError, UnknownSchemaError
from kith.common.kafka import EventEnvelope, consumer_config

log = logging.getLogger(__name__)
HOLD_RETRY_MAX_S = 60.0
GAP_ALERT_AFTER_S = 30.0  # a gap still open after this long is logged as an error
HEALTHY_AFTER_S = 30.0  # a runner up this long starts its back-off afresh
TRANSIENT_RETRY_MAX_S = 30.0
BEYOND_LOG_RECHECK_S = 5.0  # how often a log-regression hold looks for an operator's repair


def retry_delay(attempt: int, cap: float) -> float:
    """Back-off with jitter for the ``attempt``-th retry (1-based): 0.5 s doubling to ``cap``."""
    return min(cap, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class PartitionProblem(Exception):
    """A record that cannot be applied now: its partition is held back at ``offset``."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str,
                 detail: str) -> None:
        super().__init__(f"{topic}/{partition} at offset {offset}: {reason}: {detail}")
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.reason = reason
        self.detail = detail


@dataclass
class Hold:
    """A partition held back at ``offset``; ``retry_at`` None waits for an operator."""

    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    since: float
    attempts: int = 1
    retry_at: float | None = None
    active: bool = True  # paused; False while a retry is under way
    escalated: bool = False


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
    """A read model fed from event topics (``name`` and ``topics``: attributes or properties)."""

    @property
    def name(self) -> str:
        """Names its consumer group, offsets and stream versions."""

    @property
    def topics(self) -> Sequence[str]:
        """The topics it consumes."""

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
        self.holds: dict[tuple[str, int], Hold] = {}
        self.transient_failures = 0
        self._lag = metrics.LagSampler(self._config["group.id"])

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume and apply until ``stop`` is set.

        Whatever fails outside a single partition (the database restarted, the broker
        away, a failed rebalance callback) closes the consumer and the connection and
        starts again after a back-off with jitter, inside this call; a runner that stayed
        up for ``HEALTHY_AFTER_S`` starts its back-off afresh."""
        failures = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.open()
                while not stop.is_set():
                    self.step()
                    if failures and time.monotonic() - started >= HEALTHY_AFTER_S:
                        failures = 0
            except Exception as exc:
                failures += 1
                self.transient_failures += 1
                metrics.PROJECTION_RETRIES.labels(self.projection.name).inc()
                delay = retry_delay(failures, TRANSIENT_RETRY_MAX_S)
                transient = isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError,
                                             KafkaException))
                log.log(logging.WARNING if transient else logging.ERROR,
                        "projection %s: %s: %s; retrying in %.1f s", self.projection.name,
                        type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc) else "",
                        delay, exc_info=not transient)
            finally:
                self.close()
            if failures:
                stop.wait(delay)

    def open(self) -> None:
        self._conn = psycopg.connect(self.dsn, autocommit=False)
        self._consumer = Consumer(self._config)
        self._consumer.subscribe(list(self.projection.topics), on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_revoke)

    def close(self) -> None:
        consumer, conn = self._consumer, self._conn
        self._consumer = self._conn = None
        for key in list(self.holds):
            self._release(key, "closed")
        if consumer is not None:
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("projection %s: consumer close: %s", self.projection.name, exc)
        if conn is not None:
            conn.close()

    def step(self) -> int:
        """Poll one batch and apply it; return how many new events took effect."""
        assert self._consumer is not None and self._conn is not None
        self._lag.sample(self._consumer)
        self._retry_holds()
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
                hold = self.holds.get((msg.topic(), msg.partition()))
                if hold is None or not hold.active:
                    good.append(msg)
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("projection %s: consumer error %s", self.projection.name, err)
        if not good:
            return 0
        started = time.perf_counter()
        applied = self._apply_isolated(good)
        metrics.observe_projection_batch(self.projection.name, len(good), applied,
                                         time.perf_counter() - started)
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

    def _apply_isolated(self, messages: list) -> int:
        """Apply ``messages``; a partition that cannot go on is held back, the rest applies."""
        pending, applied = messages, 0
        while pending:
            try:
                applied += self._apply(pending)
            except PartitionProblem as problem:
                self._hold(problem)
                key = (problem.topic, problem.partition)
                pending = [m for m in pending
                           if (m.topic(), m.partition()) != key or m.offset() < problem.offset]
                continue
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the database is away: run() reconnects and retries everything
            except Exception as exc:
                parts: dict[tuple[str, int], list] = {}
                for m in pending:
                    parts.setdefault((m.topic(), m.partition()), []).append(m)
                if len(parts) > 1:  # which partition is it? each on its own
                    return applied + sum(self._apply_isolated(p) for p in parts.values())
                (topic, partition), part = next(iter(parts.items()))
                self._hold(PartitionProblem(topic, partition, min(m.offset() for m in part),
                                            "poison", f"{type(exc).__name__}: {exc}"))
            break
        if self._consumer is not None:
            # Best effort, for lag monitoring only: the source of truth is Postgres.
            offsets = self._next_offsets([m for m in messages if (m.topic(), m.partition())
                                          not in self.holds or not self.holds[
                                              (m.topic(), m.partition())].active])
            if offsets:
                self._consumer.commit(offsets=offsets, asynchronous=True)
        return applied

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
            last: dict[uuid.UUID, tuple[int, uuid.UUID | None]] = {
                s: (v, e) for s, v, e in conn.execute(
                    "SELECT stream_id, version, event_id FROM projection_streams"
                    " WHERE projection = %s AND stream_id = ANY(%s)",
                    (name, list({env.stream_id for _, env in records})),
                )
            }
            touched: dict[uuid.UUID, tuple[int, uuid.UUID]] = {}
            events: list[Event] = []
            for msg, env in records:
                version, event_id = last.get(env.stream_id, (0, None))
                if env.version <= version:
                    if (env.version == version and event_id is not None
                            and event_id != env.event_id):
                        raise PartitionProblem(
                            msg.topic(), msg.partition(), msg.offset(), "conflict",
                            f"stream {env.stream_id} version {version} was applied as event "
                            f"{event_id}; this record offers event {env.event_id} there")
                    continue  # redelivered by the at-least-once relay
                if env.version != version + 1:
                    raise PartitionProblem(
                        msg.topic(), msg.partition(), msg.offset(), "gap",
                        f"stream {env.stream_id} is at version {version}; this record has "
                        f"version {env.version} (event {env.event_id})")
                last[env.stream_id] = touched[env.stream_id] = (env.version, env.event_id)
                try:
                    event_type, data = self.codec.decode(env.payload)
                except UnknownSchemaError as exc:  # wait for the schema rather than skip
                    raise PartitionProblem(msg.topic(), msg.partition(), msg.offset(),
                                           "unknown_schema", str(exc)) from exc
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
            if touched:
                conn.execute(  # one statement for the whole batch: this is on the hot path
                    "INSERT INTO projection_streams (projection, stream_id, version, event_id)"
                    " SELECT %s, s, v, e FROM unnest(%s::uuid[], %s::int[], %s::uuid[])"
                    " AS t(s, v, e) ON CONFLICT (projection, stream_id) DO UPDATE"
                    " SET version = EXCLUDED.version, event_id = EXCLUDED.event_id",
                    (name, list(touched), [v for v, _ in touched.values()],
                     [e for _, e in touched.values()]),
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
        for key in {(m.topic(), m.partition()) for m in fresh}:
            if key in self.holds and not self.holds[key].active:
                self._release(key, "went past the record")
        return len(events)

    # -- holds -------------------------------------------------------------------------------

    def _hold(self, problem: PartitionProblem) -> None:
        """Pause ``problem``'s partition at its offset; retry later with back-off."""
        key = (problem.topic, problem.partition)
        now = time.monotonic()
        previous = self.holds.get(key)
        attempts = previous.attempts + 1 if previous and previous.reason == problem.reason else 1
        hold = Hold(problem.topic, problem.partition, problem.offset, problem.reason,
                    problem.detail, previous.since if previous else now, attempts,
                    escalated=bool(previous and previous.escalated))
        if problem.reason == "offset_beyond_log":  # re-checked: has an operator repaired it?
            hold.retry_at = now + BEYOND_LOG_RECHECK_S
        else:
            hold.retry_at = now + retry_delay(attempts, HOLD_RETRY_MAX_S)
        self.holds[key] = hold
        if self._consumer is not None:
            tp = TopicPartition(problem.topic, problem.partition)
            self._consumer.pause([tp])
            try:
                self._consumer.seek(TopicPartition(problem.topic, problem.partition,
                                                   problem.offset))
            except KafkaException as exc:  # the retry seeks again
                log.debug("seek on hold: %s", exc)
        metrics.observe_hold(self.projection.name, problem.topic, problem.partition,
                             problem.reason, True)
        if attempts == 1:
            level = logging.WARNING if problem.reason == "gap" else logging.ERROR
            log.log(level, "projection %s holds %s (the other partitions go on)%s",
                    self.projection.name, problem,
                    "; an operator must repair it (docs/operations.md)"
                    if problem.reason == "offset_beyond_log" else "")
        elif (problem.reason == "gap" and not hold.escalated
              and now - hold.since >= GAP_ALERT_AFTER_S):
            hold.escalated = True
            log.error("projection %s: a gap still open after %.0f s: %s", self.projection.name,
                      now - hold.since, problem)

    def _retry_holds(self) -> None:
        now = time.monotonic()
        for hold in list(self.holds.values()):
            if not hold.active or hold.retry_at is None or now < hold.retry_at:
                continue
            if hold.reason == "offset_beyond_log":
                self._recheck_beyond_log(hold)
                continue
            hold.active = False
            # From the stored offset: normally the held record's, unless an operator moved
            # it (``kith replay skip`` past it, ``reset-offsets`` back after a republish).
            stored = self._stored_offset(hold.topic, hold.partition)
            if stored != hold.offset:
                self._release((hold.topic, hold.partition), f"an operator set offset {stored}")
            assert self._consumer is not None
            try:
                self._consumer.seek(TopicPartition(hold.topic, hold.partition,
                                                   stored or OFFSET_BEGINNING))
            except KafkaException as exc:
                log.debug("seek on retry: %s", exc)
            self._consumer.resume([TopicPartition(hold.topic, hold.partition)])

    def _stored_offset(self, topic: str, partition: int) -> int:
        assert self._conn is not None
        with self._conn.transaction():
            row = self._conn.execute(
                "SELECT next_offset FROM projection_offsets WHERE projection = %s"
                " AND topic = %s AND partition = %s",
                (self.projection.name, topic, partition)).fetchone()
        return row[0] if row else 0

    def _recheck_beyond_log(self, hold: Hold) -> None:
        """Resume once the stored offset lies within the log again (``kith replay
        reset-offsets`` after a republish); otherwise look again later."""
        assert self._consumer is not None
        stored = self._stored_offset(hold.topic, hold.partition)
        tp = TopicPartition(hold.topic, hold.partition)
        _low, high = self._consumer.get_watermark_offsets(tp, timeout=10.0, cached=False)
        if stored > high:
            hold.retry_at = time.monotonic() + BEYOND_LOG_RECHECK_S
            return
        self._release((hold.topic, hold.partition), f"the stored offset is now {stored}")
        try:
            self._consumer.seek(TopicPartition(hold.topic, hold.partition,
                                               stored or OFFSET_BEGINNING))
        except KafkaException as exc:
            log.debug("seek on repair: %s", exc)
        self._consumer.resume([tp])

    def _release(self, key: tuple[str, int], why: str) -> None:
        hold = self.holds.pop(key, None)
        if hold is None:
            return
        metrics.observe_hold(self.projection.name, hold.topic, hold.partition, hold.reason, False)
        if why != "closed":
            log.warning("projection %s: %s/%d no longer held (%s): %s", self.projection.name,
                        hold.topic, hold.partition, hold.reason, why)

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
        beyond: list[PartitionProblem] = []
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition)) or 0
            tp.offset = offset or OFFSET_BEGINNING
            if offset:
                _low, high = consumer.get_watermark_offsets(tp, timeout=10.0, cached=False)
                if offset > high:
                    beyond.append(PartitionProblem(
                        tp.topic, tp.partition, offset, "offset_beyond_log",
                        f"the stored offset {offset} lies past the end of the partition "
                        f"({high}): the topic lost records or was recreated"))
        consumer.incremental_assign(partitions)
        for problem in beyond:
            self._hold(problem)
        log.info("projection %s assigned %d partitions", self.projection.name, len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._release((tp.topic, tp.partition), "revoked")
        consumer.incremental_unassign(partitions)
