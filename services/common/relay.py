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
every replica of a service. Leadership is bounded: the leader's session ends after
``LEADER_IDLE_TIMEOUT_MS`` without a statement (a frozen or cut-off leader), and server
keepalives end a vanished one, so a standby takes over within seconds.

Failures (database restarted, broker away) are retried in-process with back-off and jitter;
an event Kafka refuses while it takes the others (too large for the topic, say) holds back
only its own stream — skipped, with back-off, until Kafka takes it — not the whole outbox;
the backlog gauge keeps being updated through an outage so that alerts fire. When only part
of a batch is acknowledged, the acknowledged prefix of each partition leaves the outbox, so
what already succeeded is not sent again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import psycopg
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kith.common import metrics, tracing
from kith.common.db import scalar
from kith.common.kafka import event_headers, producer_config

log = logging.getLogger(__name__)
RELAY_LEADER_LOCK = 0x72656C6179  # "relay"
NOTIFY_CHANNEL = "kith_events"
LEADER_IDLE_TIMEOUT_MS = 10_000  # a leader silent this long loses its session (and the lock)
RETRY_MAX_S = 30.0
HEALTHY_AFTER_S = 30.0
BACKLOG_SAMPLE_S = 2.0
BACKLOG_COUNT_CAP = 10_000_000  # counting the outbox stops here (the gauge saturates)
MAX_HELD_STREAMS = 10_000  # more refused streams than this: treat it as an outage
# Kafka refusing these messages themselves (the broker is fine): only their streams wait.
# Any other delivery error (broker away, timeouts, producer state) stops the whole batch.
REFUSALS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD,
                      KafkaError.INVALID_MSG, KafkaError.INVALID_MSG_SIZE,
                      KafkaError.RECORD_LIST_TOO_LARGE})


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
        self._backlog_due = 0.0
        # Streams whose last event Kafka refused while others went through: left in the
        # outbox, skipped until their retry time, so they hold back nobody else.
        self._held: dict[Any, tuple[float, int]] = {}  # stream id → (retry at, failures)

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; stand by while another relay holds leadership."""
        failures = 0
        while not stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    if not scalar(conn, "SELECT pg_try_advisory_lock(%s)",
                                  (RELAY_LEADER_LOCK,)):
                        stop.wait(1.0)
                        continue
                    self._bound_leadership(conn)
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    log.info("relay for %s is publishing", self.topic)
                    started = time.monotonic()
                    while not stop.is_set():
                        if self.publish_batch(conn) < self.batch_size:
                            self._wait_for_appends(conn)
                        if failures and time.monotonic() - started >= HEALTHY_AFTER_S:
                            failures = 0
            except (psycopg.Error, RelayError, KafkaException) as exc:
                failures += 1
                delay = min(RETRY_MAX_S, 0.5 * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
                log.warning("relay for %s: %s; retrying in %.1f s", self.topic,
                            str(exc).strip().splitlines()[0] if str(exc) else repr(exc), delay)
                self._reset_producer()
                self._observe_outage_backlog()
                stop.wait(delay)
        if self._producer is not None:
            self._producer.flush(10)

    @staticmethod
    def _bound_leadership(conn: psycopg.Connection) -> None:
        """End this session (releasing leadership) if the process stops talking: frozen,
        partitioned or gone. The loop below never stays idle for more than ``idle_wait_s``."""
        conn.execute(f"SET idle_session_timeout = {int(LEADER_IDLE_TIMEOUT_MS)}")
        for name, value in (("tcp_keepalives_idle", 5), ("tcp_keepalives_interval", 2),
                            ("tcp_keepalives_count", 3), ("tcp_user_timeout", 10_000)):
            conn.execute(f"SET {name} = {value}")

    def _observe_outage_backlog(self) -> None:
        """Keep the backlog gauge moving while publishing fails (when the database answers)."""
        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=2) as conn:
                metrics.RELAY_BACKLOG.labels(self.topic).set(self.backlog(conn))
        except psycopg.Error:
            pass

    def publish_batch(self, conn: psycopg.Connection) -> int:
        """Publish the oldest batch of the outbox; return how many events it held."""
        now = time.monotonic()
        held = [stream for stream, (retry_at, _) in self._held.items() if retry_at > now]
        rows = conn.execute(
            "SELECT e.position, e.stream_id, e.version, e.event_id, e.event_type, e.payload,"
            " e.metadata FROM outbox o JOIN events e ON e.position = o.position"
            " WHERE e.stream_id <> ALL(%s) ORDER BY o.position LIMIT %s",
            (held, self.batch_size),
        ).fetchall()
        if not rows:
            metrics.observe_relay(self.topic, 0, self.backlog(conn) if held else 0)
            return 0
        if time.monotonic() >= self._backlog_due:  # also while batches keep failing
            self._backlog_due = time.monotonic() + BACKLOG_SAMPLE_S
            metrics.RELAY_BACKLOG.labels(self.topic).set(self.backlog(conn))
        producer = self._get_producer()
        acked: dict[int, int] = {}  # position → partition
        failed: dict[int, int] = {}  # partition → lowest failed position
        refused: dict[Any, int] = {}  # stream → its lowest position Kafka refused
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, msg: Message, position: int,
                        stream: Any) -> None:
            if err is None:
                acked[position] = msg.partition()
            else:
                errors.append(err)
                refused[stream] = min(refused.get(stream, position), position)
                failed[msg.partition()] = min(failed.get(msg.partition(), position), position)

        # Streams Kafka refused before go first, each on its own (flushed alone), so that a
        # refused event cannot take innocent neighbours of its partition's batch down with it.
        retrying = {r[1] for r in rows}.intersection(self._held)
        ordered = sorted(rows, key=lambda r: (r[1] not in retrying, str(r[1]) if r[1] in
                                              retrying else "", r[0]))
        previous = None
        for position, stream_id, version, event_id, event_type, payload, metadata in ordered:
            if previous in retrying and stream_id != previous:
                producer.flush(30)
            previous = stream_id
            while True:
                try:
                    producer.produce(self.topic, key=str(stream_id).encode(), value=payload,
                                     headers=tracing.produce_headers(
                                         self.topic, metadata, event_headers(
                                             event_type, event_id, version, position,
                                             metadata)),
                                     on_delivery=lambda e, m, p=position, s=stream_id:
                                     on_delivery(e, m, p, s))
                    break
                except BufferError:
                    producer.poll(0.05)
        remaining = producer.flush(30)
        if errors or remaining:
            # Keep only what is safely ordered: an acknowledged event below every failure in
            # its partition, and below every event whose fate is still unknown.
            unknown = [r[0] for r in rows if r[0] not in acked and r[0] not in failed.values()]
            ceiling = min(unknown) if remaining and unknown else None
            stream_of = {r[0]: r[1] for r in rows}
            if remaining:
                done = [p for p, part in acked.items() if (ceiling is None or p < ceiling)
                        and p < failed.get(part, p + 1)]
            else:  # every fate known: what Kafka took is done, unless it follows a refused
                # event of its own stream (that one is sent again after it, in order)
                done = [p for p in acked if p < refused.get(stream_of[p], p + 1)]
            if done:
                conn.execute("DELETE FROM outbox WHERE position = ANY(%s)", (done,))
                self.published += len(done)
                metrics.observe_relay(self.topic, len(done), self.backlog(conn))
            for stream in {stream_of[p] for p in done} - set(refused):
                self._held.pop(stream, None)
            if (not remaining and all(e.code() in REFUSALS for e in errors)
                    and len(self._held) + len(refused) <= MAX_HELD_STREAMS):
                # Kafka takes the others: hold back only the refused streams (their later
                # events wait too, so each stream stays in order) and carry on.
                self._hold(set(refused), errors[0])
                return len(done)
            raise RelayError(f"{len(errors)} delivery errors, {remaining} unacknowledged "
                             f"({len(done)} acknowledged kept): {errors[:1]}")
        for stream in {r[1] for r in rows}.intersection(self._held):
            del self._held[stream]  # published again
        conn.execute("DELETE FROM outbox WHERE position = ANY(%s)", ([r[0] for r in rows],))
        self.published += len(rows)
        metrics.observe_relay(self.topic, len(rows), 0 if len(rows) < self.batch_size
                              else self._max_position(conn) - rows[-1][0])
        return len(rows)

    def _hold(self, streams: set[Any], error: KafkaError) -> None:
        """Skip ``streams`` for a while (0.5 s doubling to ``RETRY_MAX_S``, with jitter)."""
        now = time.monotonic()
        for stream in [s for s, (at, _) in self._held.items() if at < now - 2 * RETRY_MAX_S]:
            del self._held[stream]  # long since retried and not refused again
        for stream in streams:
            failures = self._held.get(stream, (0.0, 0))[1] + 1
            delay = min(RETRY_MAX_S, 0.5 * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
            self._held[stream] = (now + delay, failures)
        log.warning("relay for %s: Kafka refused %d stream(s) (%s); holding them back, "
                    "publishing the others", self.topic, len(streams), error)

    def backlog(self, conn: psycopg.Connection) -> int:
        """Events recorded but not yet published (for metrics and tests)."""
        return int(scalar(conn, "SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT %s) AS o",
                          (BACKLOG_COUNT_CAP,)))

    @staticmethod
    def _max_position(conn: psycopg.Connection) -> int:
        return int(scalar(conn, "SELECT coalesce(max(position), 0) FROM events"))

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
