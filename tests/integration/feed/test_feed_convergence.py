"""Property: whatever the interleaving and batching, every feed equals the rule's."""

from __future__ import annotations

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kith.feed.fanout import FanoutProjection
from tests.integration.feed.feed_helpers import (
    actual_feeds,
    as_event,
    expected_feeds,
    interleave,
    scenario,
)

FEED_SIZE = 3


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_feeds_converge_for_any_interleaving(feed_dsn: str, data) -> None:
    def draw(lo: int, hi: int) -> int:
        return data.draw(st.integers(lo, hi))

    streams = scenario(draw)
    order = interleave(streams, draw)
    projection = FanoutProjection("graph", "post", FEED_SIZE)
    with psycopg.connect(feed_dsn) as conn:
        conn.execute("TRUNCATE feed_entries, feed_posts, feed_members, feed_blocks, feed_niches,"
                     " feed_refs RESTART IDENTITY")
        conn.commit()
        start = 0
        while start < len(order):
            size = draw(1, 8)
            batch = [as_event(s, v, e, start + i) for i, (s, v, e) in
                     enumerate(order[start:start + size])]
            with conn.transaction():
                projection.apply(conn, batch)
            start += size
        assert actual_feeds(conn) == expected_feeds(streams, FEED_SIZE)
