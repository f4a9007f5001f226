"""Whether a projection is current: a lag gate for answers read from a local view.

A service may answer a question from a projection of another service's events
(a *view*) instead of asking that service, but only while the view is known to
hold everything the topics held a moment ago. :class:`ProjectionFreshness`
establishes that moment, every ``interval_s``, in an order that makes it safe:

1. ``t0`` = now;
2. the high watermark of every partition of the projection's topics, asked of the
   brokers (one ``ListOffsets`` round, not a cached figure);
3. the offsets the projection has *applied*, read from ``projection_offsets`` in its
   database (the runner stores them in the transaction that applies the events, so
   this holds across every process of the consumer group).

If every applied offset reaches its watermark, every event on the topics before
``t0`` is in the view: the view is *current as of* ``t0``. :meth:`current` is true
while ``now - t0 <= max_lag_s``. So once an event reaches the topic, the view
answers without it for at most ``max_lag_s`` (plus the producer's delay in putting
it on the topic) — after that either the view has applied it or the gate is shut
and callers ask the owning service. A stopped runner, a held partition, a broker or
database out of reach: the moment stops advancing and the gate shuts by itself.

Rounds cost a ``ListOffsets`` request and a query each, so they run only while the
gate is asked: after ``rest_after_s`` without a :meth:`current` call they stop, and the
next call (answered "not current": the caller asks the owning service) starts them
again. An idle service costs the broker and its database nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ALL_COMPLETED, Future, wait
from typing import Any

import psycopg
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

log = logging.getLogger(__name__)
METADATA_EVERY_S = 30.0  # how often the topics' partitions are listed again
MAX_ROUNDS_IN_FLIGHT = 100  # unanswered rounds before the broker is deemed away (restart)
REST_AFTER_S = 5.0  # rounds stop this long after the gate was last asked


class ProjectionFreshness:
    """The moment a projection was last known to hold every event of its topics."""

    def __init__(self, projection: str, topics: Sequence[str], dsn: str, bootstrap: str,
                 max_lag_s: float, interval_s: float = 0.03,
                 rest_after_s: float = REST_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.projection = projection
        self.topics = list(topics)
        self.dsn = dsn
        self.bootstrap = bootstrap
        self.max_lag_s = max_lag_s
        self.interval_s = interval_s
        self.rest_after_s = rest_after_s
        self.clock = clock
        self.rounds = 0  # rounds asked of the brokers (for tests and the curious)
        self._asked_at = float("-inf")
        self._resting = False
        self._wake = threading.Event()
        self._current_as_of: float | None = None
        self._partitions: list[TopicPartition] = []
        self._listed_at = float("-inf")

    def current(self) -> bool:
        """Whether the view held every event of its topics as of ``max_lag_s`` ago or later."""
        now = self._asked_at = self.clock()
        if self._resting:
            self._wake.set()
        at = self._current_as_of
        return at is not None and now - at <= self.max_lag_s

    def run(self, stop: threading.Event) -> None:
        """Advance the moment until ``stop``; failures only let it age.

        A round starts every ``interval_s`` without waiting for the previous one (rounds
        overlap when the broker is slow to answer), so on a busy machine the moment lags
        one round trip behind, not two plus the interval."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        conn: psycopg.Connection | None = None
        try:
            while not stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.dsn, autocommit=True)
                    self._rounds(admin, conn, stop)
                except Exception as exc:  # the gate shuts by ageing; try again shortly
                    log.warning("freshness of %s: %s: %s", self.projection,
                                type(exc).__name__, exc)
                    if conn is not None:
                        conn.close()
                        conn = None
                    stop.wait(1.0)
        finally:
            if conn is not None:
                conn.close()

    def _rounds(self, admin: AdminClient, conn: psycopg.Connection,
                stop: threading.Event) -> None:
        pending: deque[tuple[float, dict[TopicPartition, Future[Any]]]] = deque()
        next_at = self.clock()
        while not stop.is_set():
            now = self.clock()
            if not pending and now - self._asked_at > self.rest_after_s:
                self._rest(stop)
                next_at = self.clock()
                continue
            if now >= next_at:
                if len(pending) >= MAX_ROUNDS_IN_FLIGHT:
                    raise TimeoutError(f"{len(pending)} watermark rounds unanswered")
                pending.append((now, self._ask(admin, now)))
                self.rounds += 1
                next_at = now + self.interval_s
            if pending:
                wait(list(pending[0][1].values()), timeout=max(0.0, next_at - self.clock()),
                     return_when=ALL_COMPLETED)
            else:
                stop.wait(max(0.0, next_at - self.clock()))
            answered = []
            while pending and all(f.done() for f in pending[0][1].values()):
                answered.append(pending.popleft())
            if answered:
                applied = self._applied(conn)
                for started, futures in reversed(answered):  # the newest that holds
                    high = {(tp.topic, tp.partition): f.result().offset
                            for tp, f in futures.items()}
                    if all(applied.get(key, 0) >= offset for key, offset in high.items()):
                        self._advance(started)
                        break

    def _rest(self, stop: threading.Event) -> None:
        """Wait (no rounds) until the gate is asked again, or ``stop``."""
        self._wake.clear()
        self._resting = True
        try:
            # Asked between the check above and ``_resting``: that call did not wake us.
            while (self.clock() - self._asked_at > self.rest_after_s
                   and not stop.is_set()):
                self._wake.wait(0.5)
                self._wake.clear()
        finally:
            self._resting = False

    def _ask(self, admin: AdminClient, now: float) -> dict[TopicPartition, Future[Any]]:
        """The brokers' high watermarks of every partition, as futures (one round)."""
        if now - self._listed_at >= METADATA_EVERY_S or not self._partitions:
            meta = admin.list_topics(timeout=5)
            self._partitions = [TopicPartition(t, p) for t in self.topics
                                for p in sorted(meta.topics[t].partitions)]
            self._listed_at = now
        futures: dict[TopicPartition, Future[Any]] = admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in self._partitions}, request_timeout=5)
        return futures

    def _applied(self, conn: psycopg.Connection) -> dict[tuple[str, int], int]:
        return {(t, p): o for t, p, o in conn.execute(
            "SELECT topic, partition, next_offset FROM projection_offsets"
            " WHERE projection = %s", (self.projection,))}

    def _advance(self, started: float) -> None:
        if self._current_as_of is None or started > self._current_as_of:
            self._current_as_of = started
