"""The fan-out worker's projection, rebuilt side by side and swapped in while it runs."""

from __future__ import annotations

import io
import random
import threading
import uuid

import psycopg

from kith.cli.replay import (
    FEED_FANOUT_TABLES,
    Renamed,
    WithTables,
    feed_fanout,
    find_projection,
    rebuild_projection,
)
from kith.common.codec import default_codec
from kith.common.config import Settings
from kith.common.db import migrate_service
from kith.common.projection import ProjectionRunner
from kith.feed.fanout import FanoutProjection
from kith_dev.bench_replay import seed
from tests.support.waiting import eventually

# Overlapping circles of people (ids), like ego networks of a friendship graph.
NICHES = [list(range(0, 30)), list(range(20, 60)), list(range(50, 65)), [1, 2, 3, 70, 71]]


def snapshot(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM public.{t}").fetchall(), key=repr)
                for t in ("feed_entries", "feed_posts", "feed_members")}


def test_the_fanout_worker_is_rebuilt_identically_without_stopping_it(
    settings: Settings,
) -> None:
    dsns = {s: settings.database_url(s) for s in ("graph", "post", "feed")}
    topics = {"graph": settings.topic("graph"), "post": settings.topic("post")}
    total = seed(dsns, topics, settings.require_kafka(), NICHES, 300, random.Random(5))
    migrate_service(dsns["feed"], "kith.feed")
    # A name of its own: consumer groups are named after projections and shared on the broker.
    name = f"feed.fanout.{uuid.uuid4().hex[:8]}"
    fanout = Renamed(FanoutProjection(topics["graph"], topics["post"], settings.feed_size), name)
    live = ProjectionRunner(fanout, dsns["feed"], settings.require_kafka(), default_codec(),
                            batch_size=100)
    stop = threading.Event()
    thread = threading.Thread(target=live.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(lambda: live.applied, lambda n: n == total, timeout=60)
        before = snapshot(dsns["feed"])
        assert len(before["feed_entries"]) > 300
        with psycopg.connect(dsns["feed"], autocommit=True) as conn:  # a damaged read model
            conn.execute("DELETE FROM feed_entries WHERE random() < 0.5")

        rebuild_projection(WithTables(fanout, FEED_FANOUT_TABLES), dsns["feed"],
                           settings.require_kafka(), default_codec(), batch_size=70,
                           progress_stream=io.StringIO())

        assert snapshot(dsns["feed"]) == before
    finally:
        stop.set()
        thread.join(30)


def test_kith_replay_rebuild_finds_the_fanout_worker(settings: Settings) -> None:
    projection, dsn, close = find_projection(settings, "feed", "feed.fanout")
    close()
    assert projection.name == FanoutProjection.name
    assert tuple(projection.tables) == FEED_FANOUT_TABLES  # type: ignore[attr-defined]
    assert tuple(projection.topics) == (settings.topic("graph"), settings.topic("post"))
    assert dsn == settings.database_url("feed") == feed_fanout(settings)[1]
