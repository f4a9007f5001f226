"""The relay's read of the outbox costs what it publishes, not what the log holds.

The outbox is small and churns; it is seldom analyzed, and on the planner's default
estimates the read joined it to the whole ``events`` table by a sequential scan — on every
read, a cost growing with the log (the skill directory's seeding spent more PostgreSQL time
there than in all its commands).
"""

from __future__ import annotations

import uuid

import psycopg

from kith.common.config import Settings
from kith.common.db import make_pool, scalar
from kith.common.eventstore import EventStore, NewEvent
from kith.common.relay import OutboxRelay
from tests.support.ledger import DEPOSITED, ledger_codec

PUBLISHED_LONG_AGO = 20_000


def sequential_scans_of_events(conn: psycopg.Connection) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")  # this session's counts, up to now
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return int(scalar(conn, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'events'"))


def test_publishing_one_event_after_a_long_log_does_not_scan_the_log(settings: Settings) -> None:
    dsn = settings.database_url("post")
    store = EventStore(make_pool(dsn, max_size=2), ledger_codec())
    payload = store.codec.encode(DEPOSITED, {"account_id": "old", "amount": 1, "memo": ""})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(  # a long log, all of it published already (nothing in the outbox)
            "INSERT INTO events (stream_id, version, event_id, event_type, payload)"
            " SELECT gen_random_uuid(), 1, gen_random_uuid(), %s, %s"
            " FROM generate_series(1, %s)", (DEPOSITED, payload, PUBLISHED_LONG_AGO))
    account = uuid.uuid4()
    store.append(account, 0, [NewEvent(DEPOSITED, {"account_id": str(account), "amount": 5,
                                                   "memo": "new"})])
    relay = OutboxRelay(dsn, settings.require_kafka(), settings.topic("post"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = sequential_scans_of_events(conn)
        assert relay.publish_batch(conn) == 1
        assert sequential_scans_of_events(conn) == before
    store.pool.close()
