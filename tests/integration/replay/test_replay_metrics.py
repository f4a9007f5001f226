"""Metrics of the relay, the projection runner and consumer lag, on the real broker."""

from __future__ import annotations

import uuid

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from kith.cli.replay import end_offsets
from kith.common import metrics
from kith.common.kafka import consumer_config
from kith.common.projection import ProjectionRunner
from kith.common.relay import OutboxRelay
from tests.integration.replay.ledger_events import Ledger
from tests.support.ledger import LedgerProjection, ledger_codec


def value(metric, **labels: str) -> float:
    return metric.labels(**labels)._value.get()


def test_the_relay_counts_what_it_publishes_and_reports_its_backlog(ledger: Ledger) -> None:
    ledger.append(25)
    dsn = ledger.settings.database_url("post")
    relay = OutboxRelay(dsn, ledger.settings.require_kafka(), ledger.topic, batch_size=10)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert relay.publish_batch(conn) == 10
        assert value(metrics.RELAY_BACKLOG, topic=ledger.topic) == 15
        while relay.publish_batch(conn):
            pass
    assert value(metrics.RELAY_PUBLISHED, topic=ledger.topic) == 25
    assert value(metrics.RELAY_BACKLOG, topic=ledger.topic) == 0


def test_consumer_lag_is_sampled_per_partition(ledger: Ledger) -> None:
    ledger.append(60)
    ledger.publish()
    bootstrap = ledger.settings.require_kafka()
    group = f"lag-test-{uuid.uuid4().hex}"
    consumer = Consumer(consumer_config(bootstrap, group))
    ends = end_offsets(bootstrap, [ledger.topic])
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
    sampler = metrics.LagSampler(group)
    try:
        read = 0
        while read < 20:
            read += len([m for m in consumer.consume(20 - read, 1.0) if m.error() is None])
        lags: dict[tuple[str, int], int] = {}
        for _ in range(50):  # watermarks are learnt from fetches: wait for every partition's
            lags = sampler.sample(consumer, force=True)
            if len(lags) == len(ends):
                break
            consumer.consume(0, 0.1)
        positions = {(tp.topic, tp.partition): tp.offset
                     for tp in consumer.position(consumer.assignment())}
    finally:
        consumer.close()
    assert set(lags) == set(ends)
    # Partitions that delivered nothing yet count from their start (nothing committed here).
    assert lags == {tp: ends[tp] - max(positions[tp], 0) for tp in ends}
    assert sum(lags.values()) == 60 - 20
    for (topic, partition), lag in lags.items():
        assert value(metrics.CONSUMER_LAG, group=group, topic=topic,
                     partition=str(partition)) == lag


def test_projection_batches_are_counted(ledger: Ledger) -> None:
    ledger.append(40)
    ledger.publish()
    dsn = ledger.settings.database_url("post")
    projection = LedgerProjection([ledger.topic])
    projection.name = f"ledger_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        projection.create_tables(conn)
    runner = ProjectionRunner(projection, dsn, ledger.settings.require_kafka(), ledger_codec(),
                              batch_size=15)
    runner.open()
    try:
        for _ in range(600):
            runner.step()
            if runner.applied == 40:
                break
    finally:
        runner.close()
    assert value(metrics.PROJECTION_APPLIED, projection=projection.name) == 40
    batches = metrics.PROJECTION_BATCH_SIZE.labels(projection=projection.name)
    assert batches._sum.get() == 40
