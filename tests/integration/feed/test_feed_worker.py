"""The real worker against real Kafka: SIGKILLed mid-stream it loses and duplicates nothing,
and a rebuild from offset zero reproduces the feeds exactly."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from kith.common.config import Settings
from kith.feed.entrypoint import fanout_runner
from tests.integration.feed.feed_helpers import (
    actual_feeds,
    append_and_publish,
    consumed,
    expected_feeds,
    feed_rows,
    scenario,
)
from tests.support.waiting import eventually

FEED_SIZE = 5


def _worker_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "KITH_PG_DSN": settings.pg_dsn or "",
            "KITH_KAFKA_BOOTSTRAP": settings.require_kafka(), "KITH_DB_PREFIX": settings.db_prefix,
            "KITH_TOPIC_PREFIX": settings.topic_prefix, "KITH_FEED_SIZE": str(FEED_SIZE),
            "KITH_FEED_BATCH_SIZE": "4", "KITH_LOG_FORMAT": "text", "KITH_LOG_LEVEL": "WARNING"}


def test_sigkill_mid_batch_loses_and_duplicates_nothing(settings: Settings,
                                                         feed_dsn: str) -> None:
    rng = random.Random(4)
    streams = scenario(rng.randint, users=25, niches=5, posts=400, ops=30)
    total = append_and_publish(settings, streams, rng.randint)
    command = [sys.executable, "-m", "kith.cli", "feed", "fanout"]
    kills = 0
    with psycopg.connect(feed_dsn) as conn:
        while kills < 4:
            worker = subprocess.Popen(command, env=_worker_env(settings))
            start = consumed(conn)
            # Let it commit a few batches, then kill it in the middle of one.
            eventually(lambda: consumed(conn), lambda n, s=start: n > s, timeout=60,
                       interval=0.02, what="the worker's progress")
            time.sleep(rng.uniform(0.0, 0.1))
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            kills += 1
            if consumed(conn) >= total:
                break
        assert consumed(conn) < total, "the stream ended before the kills: make it longer"
        worker = subprocess.Popen(command, env=_worker_env(settings))
        try:
            eventually(lambda: consumed(conn), lambda n: n >= total, timeout=90, interval=0.02)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        expected = expected_feeds(streams, FEED_SIZE)
        assert len(expected) > 100
        assert actual_feeds(conn) == expected  # set equality; the key forbids duplicates


def _drain(settings: Settings, conn: psycopg.Connection, total: int, batch_size: int,
           rebuild: bool = False) -> None:
    runner = fanout_runner(settings, batch_size=batch_size)
    if rebuild:
        runner.rebuild()
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        eventually(lambda: consumed(conn), lambda n: n >= total, timeout=60, interval=0.02)
    finally:
        stop.set()
        thread.join(30)


def test_rebuild_from_offset_zero_reproduces_the_feeds(settings: Settings,
                                                        feed_dsn: str) -> None:
    rng = random.Random(7)
    streams = scenario(rng.randint, users=12, niches=4, posts=80, ops=12)
    total = append_and_publish(settings, streams, rng.randint)
    settings = Settings(**{**settings.__dict__, "feed_size": FEED_SIZE})
    with psycopg.connect(feed_dsn) as conn:
        _drain(settings, conn, total, batch_size=7)
        before = feed_rows(conn)
        assert set(actual_feeds(conn)) == expected_feeds(streams, FEED_SIZE)
        _drain(settings, conn, total, batch_size=500, rebuild=True)
        assert feed_rows(conn) == before
        assert len(before) > 20


def test_two_workers_sharing_the_partitions_converge(settings: Settings, feed_dsn: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kith.common.projection")
    settings = Settings(**{**settings.__dict__, "feed_size": FEED_SIZE})
    runners = [fanout_runner(settings, batch_size=5) for _ in range(2)]
    stop = threading.Event()

    def run(runner) -> None:  # as the service threads do: a failed batch is retried
        while not stop.is_set():
            try:
                runner.run(stop)
            except psycopg.Error:
                time.sleep(0.1)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    try:
        # Both consumers must hold partitions before the events exist (one each way).
        eventually(lambda: sum("assigned" in r.getMessage() and " 0 partitions"
                               not in r.getMessage() for r in caplog.records),
                   lambda assigned: assigned >= 2, timeout=60, what="both consumers assigned")
        rng = random.Random(11)
        streams = scenario(rng.randint, users=15, niches=4, posts=150, ops=20)
        total = append_and_publish(settings, streams, rng.randint)
        with psycopg.connect(feed_dsn) as conn:
            eventually(lambda: consumed(conn), lambda n: n >= total, timeout=60, interval=0.02)
            assert all(r.applied > 0 for r in runners), "both workers had partitions"
            assert actual_feeds(conn) == expected_feeds(streams, FEED_SIZE)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
