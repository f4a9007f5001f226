"""Prometheus metrics of every Kith process (services, workers, tools).

The instruments are module-level (one registry per process); the shared
mechanisms record into them: the gRPC interceptor (latency by method and
status), the outbox relay (published events, backlog), the projection runner
(applied events, batch sizes, consumer lag per partition) and the fan-out
worker (deliveries). :func:`start_metrics_server` exposes them over HTTP on
``KITH_METRICS_PORT`` (0, the default, turns the endpoint off).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)
METRICS_PORT_VAR = "KITH_METRICS_PORT"

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0)
_BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 50000)

GRPC_SERVER_SECONDS = Histogram(
    "kith_grpc_server_handling_seconds", "Time to handle a unary gRPC call, by method and status.",
    ["method", "code"], buckets=_LATENCY_BUCKETS)
RELAY_PUBLISHED = Counter(
    "kith_relay_published_events_total", "Events the outbox relay published to Kafka.", ["topic"])
RELAY_BACKLOG = Gauge(
    "kith_relay_backlog_events",
    "Events recorded but not yet published, as of the relay's last batch.", ["topic"])
RELAY_IN_FLIGHT = Gauge(
    "kith_relay_in_flight_events",
    "Events handed to the Kafka producer whose delivery is not yet settled.", ["topic"])
RELAY_HELD_STREAMS = Gauge(
    "kith_relay_held_streams",
    "Streams the relay holds back after Kafka refused or timed out one of their events.",
    ["topic"])
PROJECTION_APPLIED = Counter(
    "kith_projection_applied_events_total",
    "Events a projection applied (redeliveries dropped by stream version excluded).",
    ["projection"])
PROJECTION_BATCH_SIZE = Histogram(
    "kith_projection_batch_size_events", "Messages per batch a projection applied.",
    ["projection"], buckets=_BATCH_BUCKETS)
PROJECTION_BATCH_SECONDS = Histogram(
    "kith_projection_batch_seconds", "Time to apply one batch, transaction included.",
    ["projection"], buckets=_LATENCY_BUCKETS)
CONSUMER_LAG = Gauge(
    "kith_consumer_lag_messages",
    "High watermark minus the consumer's position, per assigned partition.",
    ["group", "topic", "partition"])
PROJECTION_HOLDS = Counter(
    "kith_projection_holds_total",
    "Times a projection stopped one partition (gap, conflict, poison, unknown_schema,"
    " offset_beyond_log): the partition waits, the others go on.", ["projection", "reason"])
PROJECTION_HELD = Gauge(
    "kith_projection_held_partitions",
    "1 while a projection holds a partition back; alert when it stays for a minute.",
    ["projection", "topic", "partition", "reason"])
PROJECTION_RETRIES = Counter(
    "kith_projection_transient_failures_total",
    "Transient failures (database or broker away) a projection retried in-process.",
    ["projection"])
FANOUT_DELIVERIES = Counter(
    "kith_fanout_deliveries_total", "Feed entries the fan-out worker wrote.", ["worker"])
FANOUT_BATCH_DELIVERIES = Histogram(
    "kith_fanout_batch_deliveries", "Feed entries written per fan-out batch.", ["worker"],
    buckets=_BATCH_BUCKETS)


GRPC_CLIENT_SECONDS = Histogram(
    "kith_grpc_client_handling_seconds",
    "Time a unary gRPC call took as its caller saw it, by method and status.",
    ["method", "code"], buckets=_LATENCY_BUCKETS)
DEAD_LETTERS = Counter(
    "kith_projection_dead_letters_total",
    "Records a projection could never apply and kept in its dead-letter table.", ["projection"])
BUILD_INFO = Gauge("kith_build_info", "Always 1: the running Kith version and Python.",
                   ["version", "python"])


def _record_build_info() -> None:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    try:
        kith_version = version("kith")
    except PackageNotFoundError:
        kith_version = "unknown"
    BUILD_INFO.labels(kith_version, platform.python_version()).set(1)


_record_build_info()


def metrics_port(extra: Mapping[str, str]) -> int:
    """The metrics port configured in ``Settings.extra`` (0 = no endpoint)."""
    raw = extra.get(METRICS_PORT_VAR, "") or "0"
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{METRICS_PORT_VAR} must be an integer, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{METRICS_PORT_VAR} must be a port number, got {port}")
    return port


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> bool:
    """Serve ``/metrics`` on ``port`` in a daemon thread; return whether one was started."""
    if port == 0:
        return False
    start_http_server(port, addr=addr)
    log.info("metrics on :%d/metrics", port)
    return True


_CHILDREN: dict[tuple[Any, tuple[str, ...]], Any] = {}  # bounded: metrics x methods x codes


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, kept once made: ``labels()`` validates and locks at every
    call, too much for a metric observed per RPC. Only for children never removed."""
    key = (metric, labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


def observe_rpc(method: str, code: str, seconds: float) -> None:
    _child(GRPC_SERVER_SECONDS, method, code).observe(seconds)


def observe_client_rpc(method: str, code: str, seconds: float) -> None:
    _child(GRPC_CLIENT_SECONDS, method, code).observe(seconds)


def observe_relay(topic: str, published: int, backlog: int) -> None:
    RELAY_PUBLISHED.labels(topic).inc(published)
    RELAY_BACKLOG.labels(topic).set(backlog)


def observe_projection_batch(projection: str, messages: int, applied: int,
                             seconds: float) -> None:
    PROJECTION_APPLIED.labels(projection).inc(applied)
    PROJECTION_BATCH_SIZE.labels(projection).observe(messages)
    PROJECTION_BATCH_SECONDS.labels(projection).observe(seconds)


def observe_hold(projection: str, topic: str, partition: int, reason: str, held: bool) -> None:
    """A partition held back (``held``) or released again."""
    labels = (projection, topic, str(partition), reason)
    if held:
        PROJECTION_HOLDS.labels(projection, reason).inc()
        PROJECTION_HELD.labels(*labels).set(1)
    else:
        with contextlib.suppress(KeyError):
            PROJECTION_HELD.remove(*labels)


def observe_fanout_batch(worker: str, deliveries: int) -> None:
    FANOUT_DELIVERIES.labels(worker).inc(deliveries)
    FANOUT_BATCH_DELIVERIES.labels(worker).observe(deliveries)


class LagSampler:
    """Samples a consumer's lag per assigned partition, at most once per ``interval_s``.

    Uses the high watermarks the consumer already learnt from its fetches, so a
    sample costs no broker round trip.
    """

    def __init__(self, group: str, interval_s: float = 2.0) -> None:
        self.group = group
        self.interval_s = interval_s
        self._next = 0.0
        self._labelled: set[tuple[str, int]] = set()

    def sample(self, consumer: Consumer, force: bool = False) -> dict[tuple[str, int], int]:
        """Update the gauge; return the lag by ``(topic, partition)`` (empty when skipped)."""
        now = time.monotonic()
        if not force and now < self._next:
            return {}
        self._next = now + self.interval_s
        try:
            positions: list[TopicPartition] = consumer.position(consumer.assignment())
        except KafkaException as exc:
            log.debug("lag sample skipped: %s", exc)
            return {}
        committed = self._committed(consumer, [tp for tp in positions if tp.offset < 0])
        lags: dict[tuple[str, int], int] = {}
        for tp in positions:
            key = (tp.topic, tp.partition)
            try:
                low, high = consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high < 0:
                continue  # nothing fetched yet for this partition
            # No record delivered since the assignment: it resumes where the group committed,
            # or, never committed, at the beginning.
            offset = tp.offset if tp.offset >= 0 else committed.get(key, -1)
            lags[key] = max(0, high - (offset if offset >= 0 else max(low, 0)))
        for (topic, partition), lag in lags.items():
            CONSUMER_LAG.labels(self.group, topic, str(partition)).set(lag)
        for gone in self._labelled - lags.keys():  # partitions revoked since the last sample
            CONSUMER_LAG.remove(self.group, gone[0], str(gone[1]))
        self._labelled = set(lags)
        return lags

    @staticmethod
    def _committed(consumer: Consumer, partitions: list[TopicPartition]
                   ) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        try:
            return {(tp.topic, tp.partition): tp.offset
                    for tp in consumer.committed(partitions, timeout=1.0)}
        except KafkaException:
            return {}
