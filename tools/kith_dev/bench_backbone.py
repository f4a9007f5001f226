"""``kith bench backbone``: the event store, relay, raw consumer and projection rates.

All four are measured on the same events in one run: ``--events`` PostPublished
events appended by ``--writers`` threads (each command one event, as a service
does), published by one relay, read by a bare consumer, and applied by a
projection that keeps a per-niche post count.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Sequence

import psycopg
from confluent_kafka import Consumer

from kith.common.codec import default_codec
from kith.common.db import make_pool, scalar
from kith.common.eventstore import EventStore, NewEvent
from kith.common.projection import Event, ProjectionRunner
from kith.common.relay import OutboxRelay
from kith_dev.benchkit import bench_infra, emit, progress


class NicheCounts:
    """A minimal projection: posts per niche."""

    name = "bench-niche-counts"

    def __init__(self, topic: str) -> None:
        self.topics = [topic]

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        counts: dict[str, int] = {}
        for event in events:
            counts[event.data["niche_id"]] = counts.get(event.data["niche_id"], 0) + 1
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_niche_counts VALUES (%s, %s) ON CONFLICT (niche_id)"
                " DO UPDATE SET posts = bench_niche_counts.posts + EXCLUDED.posts",
                list(counts.items()))

    def reset(self, conn: psycopg.Connection) -> None:
        conn.execute("TRUNCATE bench_niche_counts")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith bench backbone")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args(argv)

    with bench_infra() as infra:
        settings = infra.settings
        dsn = settings.database_url("post")
        topic = settings.topic("post")
        codec = default_codec()
        niches = [str(uuid.uuid4()) for _ in range(50)]

        progress(f"appending {args.events} events with {args.writers} writers")
        pool = make_pool(dsn, max_size=args.writers + 1)
        store = EventStore(pool, codec)
        per_writer = args.events // args.writers

        def write(w: int) -> None:
            for i in range(per_writer):
                post = uuid.uuid4()
                store.append(post, 0, [NewEvent("kith.post.PostPublished", {
                    "post_id": str(post), "niche_id": niches[(w + i) % len(niches)],
                    "author_id": str(uuid.uuid4()), "text": "x" * 120,
                    "created_at_ms": int(time.time() * 1000)})])

        start = time.perf_counter()
        threads = [threading.Thread(target=write, args=(w,)) for w in range(args.writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        append_s = time.perf_counter() - start
        total = per_writer * args.writers
        pool.close()

        progress("relaying")
        relay = OutboxRelay(dsn, infra.bootstrap, topic, batch_size=5000)
        start = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            while relay.publish_batch(conn):
                pass
        relay_s = time.perf_counter() - start

        progress("raw consume")
        consumer = Consumer({"bootstrap.servers": infra.bootstrap, "group.id": f"{topic}.raw",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([topic])
        seen = 0
        first: float | None = None
        while seen < total:  # timed from the consume call that brought the first records
            before = time.perf_counter()
            batch = [m for m in consumer.consume(5000, 1.0) if m.error() is None]
            if batch and first is None:
                first = before
            seen += len(batch)
        raw_s = time.perf_counter() - (first or time.perf_counter())
        consumer.close()

        progress("projection")
        with psycopg.connect(dsn) as conn:
            conn.execute("CREATE TABLE bench_niche_counts (niche_id text PRIMARY KEY,"
                         " posts bigint NOT NULL)")
        runner = ProjectionRunner(NicheCounts(topic), dsn, infra.bootstrap, codec,
                                  batch_size=5000, group_id=f"{topic}.projection")
        runner.open()
        first = None
        while runner.applied < total:  # timed from the step that applied the first batch
            before = time.perf_counter()
            if runner.step() and first is None:
                first = before
        projection_s = time.perf_counter() - (first or time.perf_counter())
        runner.close()
        with psycopg.connect(dsn) as conn:
            counted = scalar(conn, "SELECT sum(posts) FROM bench_niche_counts")

    emit("backbone", {
        "events": total,
        "writers": args.writers,
        "append_events_per_s": round(total / append_s),
        "relay_publish_events_per_s": round(total / relay_s),
        "raw_consumer_events_per_s": round(total / raw_s),
        "projection_apply_events_per_s": round(total / projection_s),
        "projection_vs_raw_consumer": round(raw_s / projection_s, 3),
        "projection_count_check": int(counted) == total,
    })
    return 0
