"""Feed pages are read on autocommit connections that are not checked on checkout: one
round trip per statement, and a connection the server dropped costs one retry, not an error."""

from __future__ import annotations

import uuid

import psycopg

from kith.feed.readmodel import FeedReader, read_pool


def test_a_page_read_survives_the_server_dropping_every_pooled_connection(feed_dsn: str
                                                                          ) -> None:
    pool = read_pool(feed_dsn, max_size=2)
    try:
        reader = FeedReader(pool)
        viewer = uuid.uuid4()
        assert reader.home_page(viewer, None, 20) == []
        with psycopg.connect(feed_dsn, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
        assert dropped is not None and dropped[0] >= 1
        # Both pooled connections are dead; the reads still answer.
        assert reader.home_page(viewer, None, 20) == []
        assert reader.niche_page(viewer, uuid.uuid4(), None, 20) is None
    finally:
        pool.close()
