"""The fan-out worker's per-id locks stay within Postgres's lock table at any batch size."""

from __future__ import annotations

import psycopg

from kith.common.config import Settings
from kith.feed.audience import LOCK_BUCKETS, NICHES, USERS, AudienceIndex


def test_a_batch_touching_thousands_of_ids_holds_a_bounded_number_of_advisory_locks(
        settings: Settings) -> None:
    with psycopg.connect(settings.database_url("feed")) as conn, conn.transaction():
        index = AudienceIndex(conn)
        index.lock(range(1, 20_001), USERS)
        index.lock(range(20_001, 40_001), NICHES)
        held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND pid = pg_backend_pid()").fetchone()[0]
    # 40 000 ids, one lock each, would need far more than the default lock table holds
    # (max_locks_per_transaction 64 x max_connections).
    assert 0 < held <= 2 * LOCK_BUCKETS
