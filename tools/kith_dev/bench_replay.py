"""``kith bench replay``: rebuilding the feed projection from offset zero vs the raw consumer.

In one run, on the same topics: niches taken from the socfb-Reed98 friendship
graph (ego networks capped at the niche size) are created with their members
on ``graph.events.v1``, posts are published into them on ``post.events.v1``;
then

1. a bare consumer reads both topics from the beginning (no decoding, no
   writes): the raw rate the broker and client allow;
2. the feed fan-out projection (``kith.feed.fanout``, the real worker logic
   under the real :class:`~kith.common.projection.ProjectionRunner`) is rebuilt
   from offset zero into empty feed tables, as ``kith replay rebuild`` does.

Both clocks start at the poll that returned the first record, so the consumer
group's join and the first assignment (a constant, not a rate) count for neither.
One JSON line: both rates in events/s and their ratio (target ≥ 0.8), plus the
feed deliveries the rebuild wrote.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Sequence

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from kith.cli.replay import end_offsets
from kith.common.codec import default_codec
from kith.common.db import make_pool, migrate_service
from kith.common.eventstore import EventStore, NewEvent
from kith.common.kafka import consumer_config
from kith.common.projection import ProjectionRunner
from kith.common.relay import OutboxRelay
from kith.feed.fanout import FanoutProjection
from kith_dev.benchkit import bench_infra, emit, progress
from kith_dev.socialgraph import dataset_path, load_graph, random_circles

TARGET_RATIO = 0.8


def seed(settings_dsn: dict[str, str], topics: dict[str, str], bootstrap: str,
         niches: list[list[int]], posts: int, rng: random.Random) -> int:
    """Append and publish the niches, memberships and posts; return how many events."""
    codec = default_codec()
    users = {p: uuid.UUID(int=p + 1) for members in niches for p in members}
    niche_ids = [uuid.uuid4() for _ in niches]
    now = int(time.time() * 1000)
    total = 0
    pool = make_pool(settings_dsn["graph"], max_size=1)
    store = EventStore(pool, codec)
    with store.transaction() as conn:
        for niche_id, members in zip(niche_ids, niches, strict=True):
            owner = users[members[0]]
            events = [NewEvent("kith.graph.NicheCreated", {
                "niche_id": str(niche_id), "owner_id": str(owner), "name": "circle",
                "kind": "friends", "description": "", "member_cap": 150, "created_at_ms": now})]
            events += [NewEvent("kith.graph.MemberJoined", {
                "niche_id": str(niche_id), "user_id": str(users[m]),
                "role": "owner" if i == 0 else "member", "invite_id": None,
                "joined_at_ms": now}) for i, m in enumerate(members)]
            store.append(niche_id, 0, events, conn=conn)
            total += len(events)
    pool.close()
    pool = make_pool(settings_dsn["post"], max_size=1)
    store = EventStore(pool, codec)
    for start in range(0, posts, 1000):
        with store.transaction() as conn:
            for i in range(start, min(posts, start + 1000)):
                n = rng.randrange(len(niches))
                post = uuid.uuid4()
                store.append(post, 0, [NewEvent("kith.post.PostPublished", {
                    "post_id": str(post), "niche_id": str(niche_ids[n]),
                    "author_id": str(users[rng.choice(niches[n])]), "text": "x" * 140,
                    "created_at_ms": now + i})], conn=conn)
    total += posts
    pool.close()
    for service, topic in topics.items():
        relay = OutboxRelay(settings_dsn[service], bootstrap, topic, batch_size=5000)
        with psycopg.connect(settings_dsn[service], autocommit=True) as conn:
            while relay.publish_batch(conn):
                pass
    return total


def raw_consume(bootstrap: str, topics: Sequence[str], total: int) -> float:
    """Seconds a bare consumer takes to read ``total`` records of ``topics`` from the start."""
    consumer = Consumer(consumer_config(bootstrap, f"bench.raw.{uuid.uuid4().hex}"))
    ends = end_offsets(bootstrap, topics)
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
    seen = 0
    started: float | None = None
    try:
        while seen < total:
            polled = time.perf_counter()
            for msg in consumer.consume(10_000, 1.0):
                err = msg.error()
                if err is None:
                    seen += 1
                    started = started or polled
                elif err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"consumer error: {err}")
        assert started is not None
        return time.perf_counter() - started
    finally:
        consumer.close()


def rebuild(dsn: str, bootstrap: str, graph_topic: str, post_topic: str, total: int,
            feed_size: int, batch_size: int, timeout_s: float) -> tuple[float, int]:
    """Seconds to rebuild the fan-out projection from offset zero, and its deliveries."""
    projection = FanoutProjection(graph_topic, post_topic, feed_size)
    runner = ProjectionRunner(projection, dsn, bootstrap, default_codec(), batch_size=batch_size)
    deadline = time.monotonic() + timeout_s
    started: float | None = None
    runner.open()
    try:
        while runner.applied < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"rebuild applied {runner.applied}/{total} in {timeout_s} s")
            polled = time.perf_counter()
            if runner.step():
                started = started or polled
        assert started is not None
        return time.perf_counter() - started, projection.totals.deliveries
    finally:
        runner.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith bench replay")
    parser.add_argument("--niches", type=int, default=60)
    parser.add_argument("--niche-size", type=int, default=150)
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    rng = random.Random(42)

    with bench_infra() as infra:
        settings = infra.settings
        dsns = {s: settings.database_url(s) for s in ("graph", "post", "feed")}
        topics = {"graph": settings.topic("graph"), "post": settings.topic("post")}
        migrate_service(dsns["feed"], "kith.feed")
        niches = random_circles(load_graph(dataset_path(settings.extra)), args.niches,
                                args.niche_size, rng, min_friends=10)
        progress(f"seeding {len(niches)} niches and {args.posts} posts")
        total = seed(dsns, topics, infra.bootstrap, niches, args.posts, rng)
        progress(f"reading {total} events with a bare consumer")
        raw_s = raw_consume(infra.bootstrap, list(topics.values()), total)
        progress("rebuilding the feed projection from offset zero")
        rebuild_s, deliveries = rebuild(dsns["feed"], infra.bootstrap, topics["graph"],
                                        topics["post"], total, settings.feed_size,
                                        args.batch_size, args.timeout)
        raw_rate, rebuild_rate = total / raw_s, total / rebuild_s
        emit("replay", {
            "projection": FanoutProjection.name,
            "events": total,
            "niches": len(niches),
            "memberships": sum(len(n) for n in niches),
            "posts": args.posts,
            "batch_size": args.batch_size,
            "raw_consumer_events_per_s": round(raw_rate),
            "rebuild_events_per_s": round(rebuild_rate),
            "ratio": round(rebuild_rate / raw_rate, 3),
            "target_ratio": TARGET_RATIO,
            "rebuild_seconds": round(rebuild_s, 3),
            "feed_deliveries": deliveries,
            "feed_deliveries_per_s": round(deliveries / rebuild_s),
        })
    return 0
