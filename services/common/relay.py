"""The outbox relay: publishes a service's committed events to its Kafka topic.

It reads the events the ``outbox`` table still lists, in position order, produces each
keyed by stream id with an idempotent producer, and deletes an outbox row once Kafka has
acknowledged that event. The outbox is the per-event "not yet published" mark: what is
acknowledged leaves it one row at a time, so a crash republishes only events whose
acknowledgement was not yet recorded (at-least-once; consumers drop redelivered events by
stream version), and never loses one Kafka did not acknowledge.

Publication is pipelined per stream, not per batch. :meth:`OutboxRelay.run` hands events
to the producer and settles their delivery reports as they come, without waiting for a
whole batch: a partition whose leader is unreachable (its messages neither acknowledged nor
refused) keeps its events in flight — librdkafka retries them until ``message.timeout.ms``
— while later events of the other streams go on being published, and nothing already
acknowledged is sent again.

Order within a stream (key = partition) rests on this invariant: **a stream's events are
handed to the producer only while none of its earlier events is in flight.** The events of
a stream that go out together (its "wave": its oldest outbox rows, in position order) are
produced back to back to one partition, and the idempotent producer (``enable.idempotence``:
at most 5 requests in flight per partition, sequence-numbered, retried in order) writes them
in that order. When one of them fails, only those *below* it leave the outbox; it and the
rest of its wave are sent again, in order, in a later wave once the stream's retry time
comes — even one of them the broker did write (a message timing out in flight may be
written after all), so the topic may repeat an event but shows none whose predecessor was
not sent before it — short of one narrow case: a wave spanning two produce requests whose
first times out *in flight*, after which librdkafka bumps the producer epoch and may still
write the second (a projection then reports a gap and holds that partition; the old relay
had the same exposure). Streams are independent, so a stream waiting on an unreachable
partition holds back nobody else — up to ``max_in_flight`` events in flight in all.

Skipping is impossible: an event leaves the outbox only once Kafka has it, however late its
transaction committed (see :mod:`kith.common.eventstore` for why per-stream order still
holds). Only one relay per database publishes at a time (a session advisory lock); others
stand by, so a relay can run beside every replica of a service. Leadership is bounded: the
leader's session ends after ``LEADER_IDLE_TIMEOUT_MS`` without a statement (a frozen or
cut-off leader), and server keepalives end a vanished one, so a standby takes over within
seconds.

Failures are retried in-process with back-off and jitter: the database away (the producer
and what it holds in flight survive the reconnection), a stream whose event Kafka refused
(too large for the topic, say) or could not deliver in time (held back alone, with back-off,
``kith_relay_held_streams``). The backlog gauge keeps being updated through an outage so
that alerts fire; ``kith_relay_in_flight_events`` shows what waits on Kafka.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
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
MAX_HELD_STREAMS = 10_000  # more held streams than this: pause publishing as a whole
RECONNECT_BACKOFF_MAX_MS = 1000
# How long the relay's producer waits to fill a request: under load several events (of any
# streams and partitions) share one produce request, one broker round and one batch of
# delivery reports (so one outbox DELETE and one read), instead of one of each per event.
LINGER_MS = 5
GATHER_S = LINGER_MS / 1000  # an append announced while events are in flight waits this long
FLUSH_TIMEOUT_S = 30.0  # publish_batch waits this long for its acknowledgements
REFUSAL_GAP_S = 0.02  # a stream retried after a refusal goes out alone, this far from others
# Kafka refusing these messages themselves (the broker is fine): only their streams wait.
REFUSALS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD,
                      KafkaError.INVALID_MSG, KafkaError.INVALID_MSG_SIZE,
                      KafkaError.RECORD_LIST_TOO_LARGE})


class RelayError(RuntimeError):
    """Kafka did not acknowledge all a synchronous batch produced (what it did is kept)."""


@dataclass
class _Wave:
    """One stream's events in flight: produced together, settled report by report."""

    pending: int = 0
    acked: list[int] = field(default_factory=list)
    failed: int | None = None  # the lowest position Kafka did not take
    error: KafkaError | None = None


class OutboxRelay:
    def __init__(self, dsn: str, bootstrap: str, topic: str, batch_size: int = 5000,
                 idle_wait_s: float = 0.5, max_in_flight: int = 20_000,
                 **producer_overrides: Any) -> None:
        self.dsn = dsn
        self.topic = topic
        self.batch_size = batch_size
        self.idle_wait_s = idle_wait_s
        self.max_in_flight = max_in_flight
        # A broker back after an outage is reached within a second, not librdkafka's 10 s.
        self._producer_config = producer_config(
            bootstrap, **{"reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
                          "linger.ms": LINGER_MS, **producer_overrides})
        self._producer: Producer | None = None
        self.published = 0
        self._backlog_due = 0.0
        self._waves: dict[str, _Wave] = {}  # streams with events in flight
        self._in_flight = 0
        self._settled: list[tuple[str, _Wave]] = []  # waves whose every report came
        self._acked: list[int] = []  # acknowledged positions still to leave the outbox
        # Streams whose event Kafka refused or did not deliver in time: left in the outbox,
        # skipped until their retry time, so they hold back nobody else.
        self._held: dict[str, tuple[float, int, bool]] = {}  # stream → (retry at, failures,
        self._paused_until = 0.0                             # refused by Kafka)
        self._pauses = 0
        self._last_position = 0  # the highest position handed to the producer
        self._look = True  # the outbox may hold events that could go now
        self._looked_at = 0.0
        self._announced = 0.0  # when an append not yet read was first announced (0: none)

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; stand by while another relay holds leadership."""
        failures = 0
        while not stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    if not scalar(conn, "SELECT pg_try_advisory_lock(%s)",
                                  (RELAY_LEADER_LOCK,)):
                        self._poll(0)  # settle what an earlier leadership left in flight
                        stop.wait(1.0)
                        continue
                    self._bound_leadership(conn)
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    log.info("relay for %s is publishing", self.topic)
                    started = time.monotonic()
                    while not stop.is_set():
                        self._step(conn)
                        if failures and time.monotonic() - started >= HEALTHY_AFTER_S:
                            failures = 0
                    self._drain(conn, 10.0)
            except (psycopg.Error, KafkaException) as exc:
                failures += 1
                delay = min(RETRY_MAX_S, 0.5 * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
                log.warning("relay for %s: %s; retrying in %.1f s", self.topic,
                            str(exc).strip().splitlines()[0] if str(exc) else repr(exc), delay)
                if (isinstance(exc, KafkaException) and exc.args
                        and isinstance(exc.args[0], KafkaError) and exc.args[0].fatal()):
                    self._reset_producer()  # unusable; what it held in flight is sent again
                self._observe_outage_backlog()
                stop.wait(delay)
        if self._producer is not None:
            self._producer.flush(10)

    def _step(self, conn: psycopg.Connection) -> None:
        """Settle the delivery reports that came, hand over what may go, wait a little.

        The outbox is read only when something may have become sendable: an append was
        announced (NOTIFY, also one that came in during our own statements), a stream's
        events settled, a held stream's retry time came, the last read was full, or
        ``idle_wait_s`` passed (which also keeps the leader's session from idling out).
        Reading it after every delivery report instead costs a statement per event and,
        under load, the latency of every publish in this process. While events are in
        flight, an announced append waits for the next delivery reports or ``GATHER_S``
        (the producer's own linger), whichever comes first: under load one read then
        serves several appends and a settled wave, instead of one read for each."""
        self._poll(0)
        if self._settled:
            self._look = True
        self._settle(conn)
        now = time.monotonic()
        if (now - self._looked_at >= self.idle_wait_s
                or any(at <= now and stream not in self._waves  # due, not in flight
                       for stream, (at, _, _) in self._held.items())):
            self._look = True
        if self._announced and (not self._waves or now - self._announced >= GATHER_S):
            self._look = True
        produced = 0
        if self._look:
            self._look, self._looked_at, self._announced = False, now, 0.0
            produced = self._pump(conn, self.batch_size)
            self._look = produced >= self.batch_size  # a full read: more may be waiting
        self._observe(conn, produced, asked=self.batch_size)
        if produced:
            self._poll(0)
        elif self._waves:  # wake at the next delivery report, or soon for new appends
            self._poll(min(self.idle_wait_s, 0.005))
            for _ in conn.notifies(timeout=0, stop_after=1):
                self._announced = self._announced or time.monotonic()
        else:
            self._wait_for_appends(conn)
            self._look = True

    def _drain(self, conn: psycopg.Connection, timeout_s: float) -> None:
        """On stop: wait a little for what is in flight, and record what Kafka took."""
        if self._producer is not None and self._waves:
            self._producer.flush(timeout_s)
        self._settle(conn)

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
        """Publish the oldest batch of the outbox and wait for it; return how many events
        left the outbox. Raises :class:`RelayError` if some were neither acknowledged nor
        refused (a stream Kafka refused is held back, as in :meth:`run`)."""
        before = self.published
        self._poll(0)
        self._settle(conn)
        produced = self._pump(conn, self.batch_size)
        remaining = self._get_producer().flush(FLUSH_TIMEOUT_S) if self._waves else 0
        errors = self._settle(conn)
        self._observe(conn, produced, asked=self.batch_size, force=True)
        undelivered = [e for e in errors if e.code() not in REFUSALS]
        if remaining or undelivered:
            raise RelayError(f"{len(undelivered)} stream(s) undelivered, {remaining} events "
                             f"unacknowledged ({self.published - before} acknowledged kept): "
                             f"{undelivered[:1]}")
        return self.published - before

    def _pump(self, conn: psycopg.Connection, limit: int) -> int:
        """Hand the oldest outbox events of streams with nothing in flight (and not held) to
        the producer, at most ``limit`` and ``max_in_flight`` in all; return how many."""
        now = time.monotonic()
        limit = min(limit, self.max_in_flight - self._in_flight)
        if limit <= 0 or now < self._paused_until:
            return 0
        # Stream ids travel as text: the streams to skip go as one array literal, which
        # PostgreSQL parses, instead of a list psycopg adapts element by element (with a few
        # hundred streams in flight that was most of the relay's own CPU per read).
        busy = [*self._waves, *(s for s, (at, _, _) in self._held.items() if at > now)]
        # Each outbox row fetches its event by key (the lateral subquery, kept apart by
        # OFFSET 0, cannot become a hash join): the read costs what the outbox holds, never
        # what the log holds. As a plain join, on the default estimates of a seldom analyzed
        # outbox (a fresh database, a churning table), it scanned the whole events table on
        # every read (4.3 ms per read at 10,000 events, growing with the log).
        rows = conn.execute(
            "SELECT e.position, e.stream_id::text, e.version, e.event_id, e.event_type,"
            " e.payload, e.metadata FROM outbox o CROSS JOIN LATERAL (SELECT * FROM events"
            " WHERE events.position = o.position OFFSET 0) e"
            " WHERE NOT e.stream_id = ANY(%s::uuid[]) ORDER BY o.position LIMIT %s",
            ("{" + ",".join(busy) + "}", limit),
        ).fetchall()
        # A stream Kafka refused before goes out alone, apart in time from every other
        # message of its partition, so that a refused event cannot take innocent neighbours
        # of its partition's request down with it (nor they it).
        retrying = {r[1] for r in rows if r[1] in self._held and self._held[r[1]][2]}
        if rows:
            self._last_position = max(self._last_position, rows[-1][0])
        produced = 0
        handed: set[str] = set()  # streams handed over by this call

        def produce(row: tuple[Any, ...]) -> int:
            if row[1] in handed and row[1] not in self._waves:
                return 0  # its wave settled meanwhile (a report served while the buffer
                # was full): maybe failed, so its later events wait for the next call
            handed.add(row[1])
            self._produce(row)
            return 1

        for row in rows:
            if row[1] not in retrying:
                produced += produce(row)
        for stream in sorted(retrying, key=str):
            self._poll_for(REFUSAL_GAP_S)
            for row in rows:
                if row[1] == stream:
                    produced += produce(row)
            self._poll_for(REFUSAL_GAP_S)
        return produced

    def _produce(self, row: tuple[Any, ...]) -> None:
        position, stream_id, version, event_id, event_type, payload, metadata = row
        producer = self._get_producer()
        wave = self._waves.setdefault(stream_id, _Wave())
        wave.pending += 1  # before producing: a report served meanwhile cannot settle it
        self._in_flight += 1
        try:
            while True:
                try:
                    producer.produce(self.topic, key=stream_id.encode(), value=payload,
                                     headers=tracing.produce_headers(
                                         self.topic, metadata, event_headers(
                                             event_type, event_id, version, position,
                                             metadata)),
                                     on_delivery=lambda e, m, p=position, s=stream_id:
                                     self._on_delivery(e, m, p, s))
                    return
                except BufferError:
                    producer.poll(0.05)
        except BaseException:
            wave.pending -= 1
            self._in_flight -= 1
            if wave.pending == 0:
                del self._waves[stream_id]
                self._settled.append((stream_id, wave))
            raise

    def _on_delivery(self, err: KafkaError | None, msg: Message, position: int,
                     stream: str) -> None:
        wave = self._waves.get(stream)
        if wave is None:  # a report of a producer already replaced: its event goes again
            return
        wave.pending -= 1
        self._in_flight -= 1
        if err is None:
            wave.acked.append(position)
        elif wave.failed is None or position < wave.failed:
            wave.failed, wave.error = position, err
        if wave.pending == 0:
            del self._waves[stream]
            self._settled.append((stream, wave))

    def _settle(self, conn: psycopg.Connection) -> list[KafkaError]:
        """Take what Kafka acknowledged out of the outbox; hold back streams it did not
        take (they go again, in order, from their first event not taken); return the
        errors of those streams."""
        settled, self._settled = self._settled, []
        errors: list[KafkaError] = []
        refused: set[str] = set()
        lost: set[str] = set()
        for stream, wave in settled:
            if wave.error is None or wave.failed is None:
                self._acked.extend(wave.acked)
                self._held.pop(stream, None)
                self._pauses = 0
                continue
            kept = [p for p in wave.acked if p < wave.failed]
            self._acked.extend(kept)
            errors.append(wave.error)
            (refused if wave.error.code() in REFUSALS else lost).add(stream)
        if refused:
            self._hold(refused, True, next(e for e in errors if e.code() in REFUSALS))
        if lost:
            self._hold(lost, False, next(e for e in errors if e.code() not in REFUSALS))
        if self._acked:
            conn.execute("DELETE FROM outbox WHERE position = ANY(%s)", (self._acked,))
            self.published += len(self._acked)
            metrics.RELAY_PUBLISHED.labels(self.topic).inc(len(self._acked))
            self._acked = []
        if fatal := next((e for e in errors if e.fatal()), None):
            raise KafkaException(fatal)  # the producer is unusable: run() replaces it
        return errors

    def _hold(self, streams: set[str], refused: bool, error: KafkaError) -> None:
        """Skip ``streams`` for a while (0.5 s doubling to ``RETRY_MAX_S``, with jitter);
        pause publishing as a whole when more than ``MAX_HELD_STREAMS`` are held."""
        now = time.monotonic()
        for stream in [s for s, (at, _, _) in self._held.items() if at < now - 2 * RETRY_MAX_S]:
            del self._held[stream]  # long since retried and not failed again
        for stream in streams:
            failures = self._held.get(stream, (0.0, 0, False))[1] + 1
            delay = min(RETRY_MAX_S, 0.5 * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
            self._held[stream] = (now + delay, failures, refused)
        if len(self._held) > MAX_HELD_STREAMS:
            self._pauses += 1
            delay = min(RETRY_MAX_S, 0.5 * 2 ** (self._pauses - 1)) * random.uniform(0.5, 1.0)
            self._paused_until = now + delay
            log.warning("relay for %s: %d streams held back (%s); pausing for %.1f s",
                        self.topic, len(self._held), error, delay)
            return
        log.warning("relay for %s: Kafka %s %d stream(s) (%s); holding them back, "
                    "publishing the others", self.topic,
                    "refused" if refused else "did not deliver", len(streams), error)

    def _observe(self, conn: psycopg.Connection, produced: int, asked: int,
                 force: bool = False) -> None:
        """The backlog gauge (sampled every ``BACKLOG_SAMPLE_S``, also while publishing fails),
        and what is in flight and held back."""
        now = time.monotonic()
        held = sum(1 for at, _, _ in self._held.values() if at > now)
        metrics.RELAY_IN_FLIGHT.labels(self.topic).set(self._in_flight)
        metrics.RELAY_HELD_STREAMS.labels(self.topic).set(held)
        gauge = metrics.RELAY_BACKLOG.labels(self.topic)
        settled = not self._waves and not held
        if settled and (not produced or (force and produced < asked)):
            gauge.set(0)  # the outbox holds nothing we could publish: it is empty
        elif settled and force and produced == asked:  # a full batch: cheaper than counting
            gauge.set(max(0, self._max_position(conn) - self._last_position))
        elif force or now >= self._backlog_due:
            self._backlog_due = now + BACKLOG_SAMPLE_S
            gauge.set(self.backlog(conn))

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

    def _poll(self, timeout_s: float) -> None:
        """Serve delivery reports (at most ``timeout_s`` waiting for the first)."""
        if self._producer is not None:
            self._producer.poll(timeout_s)

    def _poll_for(self, seconds: float) -> None:
        """Serve delivery reports for ``seconds`` (and hand nothing new over meanwhile)."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            self._poll(left)

    def _reset_producer(self) -> None:
        """A new producer (a fatal error, or the topic's partitions changed): what the old
        one still held in flight fails and is sent again by the new one."""
        if self._producer is not None:
            self._producer.flush(5)
            self._producer.purge()
            self._producer.poll(0)
            self._producer = None
        for stream, wave in self._waves.items():  # no report will come for these
            self._settled.append((stream, wave))
            wave.failed = wave.failed if wave.failed is not None else -1
            wave.error = wave.error or KafkaError(KafkaError._PURGE_QUEUE)
        self._waves.clear()
        self._in_flight = 0
