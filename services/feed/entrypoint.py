"""``kith feed serve`` (the feed queries) and ``kith feed fanout`` (the fan-out worker).

The worker runs in processes of its own: one consumer group over the graph and
post topics, so it scales with their partitions.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable

from psycopg_pool import ConnectionPool

from kith.common import liveness, logs, metrics, tracing
from kith.common.codec import default_codec
from kith.common.config import ConfigError, Settings
from kith.common.db import migrate_service
from kith.common.projection import ProjectionRunner
from kith.common.rpc import channel
from kith.common.service import (
    ServiceContext,
    ServiceSpec,
    projection_group,
    serve,
    wait_for_signal,
)
from kith.feed.application import FeedApplication
from kith.feed.clients import GraphClient, IdentityClient, MediaClient, PostClient
from kith.feed.fanout import FanoutProjection
from kith.feed.grpc_api import FeedServicer, encode_item, register
from kith.feed.hydration import DEFAULT_MAX_LAG_MS, DEFAULT_POSTS, CacheFeed, HydrationCache
from kith.feed.readmodel import FeedReader, read_pool
from kith.protos import feed_pb2

log = logging.getLogger(__name__)
SERVICE_NAME = feed_pb2.DESCRIPTOR.services_by_name["FeedService"].full_name
DEFAULT_BATCH = 2000
DEFAULT_POLL_MS = 10  # a partial batch waits at most this long: the latency floor
REPORT_EVERY_S = 10.0


_READ_POOLS: dict[int, ConnectionPool] = {}  # per service context: pages read on their own pool


def _reads(ctx: ServiceContext) -> ConnectionPool:
    pool = _READ_POOLS.get(id(ctx))
    if pool is None:
        pool = _READ_POOLS[id(ctx)] = read_pool(ctx.dsn)
    return pool


def _close_reads(ctx: ServiceContext) -> Callable[[threading.Event], None]:
    def close_on_stop(stop: threading.Event) -> None:
        stop.wait()
        if (pool := _READ_POOLS.pop(id(ctx), None)) is not None:
            pool.close()
    return close_on_stop


_CACHES: dict[str, HydrationCache] = {}  # per feed database: this process's page cache


def _cache(ctx: ServiceContext) -> HydrationCache | None:
    """The page cache (``KITH_FEED_CACHE_POSTS=0`` turns it off), one per service context."""
    extra = ctx.settings.extra
    size = int(extra.get("KITH_FEED_CACHE_POSTS") or DEFAULT_POSTS)
    lag_ms = int(extra.get("KITH_FEED_CACHE_MAX_LAG_MS") or DEFAULT_MAX_LAG_MS)
    if size < 0 or lag_ms < 1:
        raise ConfigError("KITH_FEED_CACHE_POSTS must be ≥ 0, KITH_FEED_CACHE_MAX_LAG_MS ≥ 1")
    if size == 0 or not ctx.settings.kafka_bootstrap:
        return None
    key = ctx.settings.database_url("feed")
    if key not in _CACHES:
        _CACHES[key] = HydrationCache(size, lag_ms / 1000)
    return _CACHES[key]


def cache_of(settings: Settings) -> HydrationCache:
    """The page cache of the feed server running in this process on ``settings``."""
    return _CACHES[settings.database_url("feed")]


def _tail(ctx: ServiceContext) -> list[Callable[[threading.Event], None]]:
    cache = _cache(ctx)
    if cache is None:
        return []
    settings = ctx.settings
    feed = CacheFeed(cache, settings.require_kafka(),
                     {s: settings.topic(s) for s in ("post", "identity", "graph", "media")})

    def run(stop: threading.Event) -> None:
        try:
            feed.run(stop)
        finally:
            _CACHES.pop(settings.database_url("feed"), None)
    return [run]


def _queries(ctx: ServiceContext) -> FeedApplication:
    settings = ctx.settings
    return FeedApplication(FeedReader(_reads(ctx)), PostClient(channel(settings.grpc_addr("post"))),
                           IdentityClient(channel(settings.grpc_addr("identity"))),
                           GraphClient(channel(settings.grpc_addr("graph"))),
                           MediaClient(channel(settings.grpc_addr("media"))),
                           encode_item, cache=_cache(ctx))


SPEC = ServiceSpec(
    name="feed",
    package="kith.feed",
    grpc_services=[SERVICE_NAME],
    register=lambda ctx: [register(FeedServicer(_queries(ctx)))],
    publishes=False,  # the feed records no events of its own
    background=lambda ctx: [_close_reads(ctx), *_tail(ctx)],
)


def fanout_runner(settings: Settings, batch_size: int | None = None) -> ProjectionRunner:
    """The worker's projection runner (the feed database migrated)."""
    if settings.feed_size < 1:
        raise ConfigError("KITH_FEED_SIZE must be at least 1")
    dsn = settings.database_url("feed")
    migrate_service(dsn, "kith.feed")
    projection = FanoutProjection(settings.topic("graph"), settings.topic("post"),
                                  settings.feed_size)
    extra = settings.extra
    size = batch_size or int(extra.get("KITH_FEED_BATCH_SIZE") or DEFAULT_BATCH)
    poll_ms = int(extra.get("KITH_FEED_POLL_MS") or DEFAULT_POLL_MS)
    if size < 1 or poll_ms < 1:
        raise ConfigError("KITH_FEED_BATCH_SIZE and KITH_FEED_POLL_MS must be at least 1")
    return ProjectionRunner(projection, dsn, settings.require_kafka(), default_codec(),
                            batch_size=size, poll_timeout_s=poll_ms / 1000,
                            group_id=projection_group(settings, projection.name))


def fanout(argv: list[str]) -> int:
    """Run the fan-out worker until SIGTERM/SIGINT; log its counters every few seconds."""
    parser = argparse.ArgumentParser(prog="kith feed fanout")
    parser.add_argument("--rebuild", action="store_true",
                        help="empty the feeds and replay both topics from offset zero")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure("feed", settings.log_level, settings.log_format)
    stop = wait_for_signal()
    metrics.start_metrics_server(metrics.metrics_port(settings.extra))
    tracing.configure("feed-fanout", settings.extra)
    runner = fanout_runner(settings)
    stall_s = float(settings.extra.get(liveness.STALL_VAR) or liveness.DEFAULT_STALL_S)
    liveness.serve_liveness(
        int(settings.extra.get(liveness.HEALTH_PORT_VAR) or 0),
        liveness.ProgressCheck(lambda: runner.applied,
                               lambda: liveness.group_lag(runner.group_id), stall_s))
    if args.rebuild:
        runner.rebuild()
    reporter = threading.Thread(target=_report, args=(runner, stop), daemon=True)
    reporter.start()
    runner.run(stop)
    _log_counters(runner)
    return 0


def _report(runner: ProjectionRunner, stop: threading.Event) -> None:
    while not stop.wait(REPORT_EVERY_S):
        _log_counters(runner)


def _log_counters(runner: ProjectionRunner) -> None:
    projection = runner.projection
    assert isinstance(projection, FanoutProjection)
    totals = projection.totals
    log.info("fanout counters", extra={"fields": {
        "kith_feed_batches_total": projection.batches,
        "kith_feed_events_total": totals.events,
        "kith_feed_deliveries_total": totals.deliveries,
        "kith_feed_retractions_total": totals.retractions,
        "kith_feed_reconciled_total": totals.reconciled,
        "kith_feed_last_batch_events": projection.last_batch.events,
        "kith_feed_last_batch_deliveries": projection.last_batch.deliveries,
    }})


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "serve": lambda argv: serve(SPEC),
    "fanout": fanout,
}
