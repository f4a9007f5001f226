"""Every projection keeps the projection contract (tests/support/projection_contract.py)."""

from __future__ import annotations

import random
from typing import Any

import psycopg

from kith.common.codec import AvroCodec
from kith.common.config import Settings
from kith.common.db import migrate_service
from kith.common.projection import Projection
from kith.feed.fanout import FanoutProjection
from tests.integration.common.test_projection import record_and_publish
from tests.integration.feed.feed_helpers import append_and_publish, scenario
from tests.support.ledger import LedgerProjection, ledger_codec
from tests.support.projection_contract import ProjectionContract


class TestLedgerProjectionContract(ProjectionContract):
    """The test domain's balances (the runner's own guarantees, on the smallest read model)."""

    def projection(self, settings: Settings) -> Projection:
        return LedgerProjection([settings.topic("post")])

    def prepare(self, settings: Settings, dsn: str) -> None:
        with psycopg.connect(dsn) as conn:
            LedgerProjection.create_tables(conn)

    def publish_story(self, settings: Settings) -> None:
        record_and_publish(settings, accounts=6, events=40)

    def snapshot(self, conn: psycopg.Connection) -> Any:
        return conn.execute("SELECT * FROM ledger_balances ORDER BY 1").fetchall()

    def codec(self) -> AvroCodec:
        return ledger_codec()


class TestFeedFanoutProjectionContract(ProjectionContract):
    """The feed fan-out: membership and block churn, posts published and deleted."""

    service = "feed"

    def projection(self, settings: Settings) -> Projection:
        return FanoutProjection(settings.topic("graph"), settings.topic("post"), 5)

    def prepare(self, settings: Settings, dsn: str) -> None:
        migrate_service(dsn, "kith.feed")

    def publish_story(self, settings: Settings) -> None:
        rng = random.Random(3)
        append_and_publish(settings, scenario(rng.randint, users=8, niches=3, posts=40, ops=8),
                           rng.randint)

    def snapshot(self, conn: psycopg.Connection) -> Any:
        """The feeds and the audience index (surrogate ids survive a reset)."""
        tables = ("feed_entries", "feed_posts", "feed_members", "feed_blocks", "feed_niches")
        state = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
        return state if any(state.values()) else {}
