"""Rate limits leased per process: the shared count is never exceeded, and large limits cost
one shared-counter update per lease instead of one per request."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import pytest
from limits import RateLimitItemPerMinute
from limits.strategies import FixedWindowRateLimiter
from psycopg_pool import ConnectionPool

from kith.common.db import migrate_service
from kith.gateway.ratelimit import LeasedStorage
from tests.integration.gateway.harness import Gateway


@pytest.fixture
def pool(gateway: Gateway) -> Iterator[ConnectionPool]:
    dsn = gateway.settings.database_url("gateway")
    migrate_service(dsn, "kith.gateway")
    with ConnectionPool(dsn, min_size=1, max_size=8, kwargs={"autocommit": True}) as p:
        yield p


def shared_count(pool: ConnectionPool, key: str) -> int:
    with pool.connection() as conn:
        row = conn.execute("SELECT count FROM rate_limits WHERE key = %s", (key,)).fetchone()
    return int(row[0]) if row else 0


def test_two_processes_never_admit_more_than_the_limit_between_them(pool: ConnectionPool
                                                                     ) -> None:
    # Two gateway processes, each leasing a tenth of a 100/minute budget at a time.
    first, second = (LeasedStorage(pool=pool, lease_fraction=0.1) for _ in range(2))
    limit = RateLimitItemPerMinute(100)
    limiters = [FixedWindowRateLimiter(first), FixedWindowRateLimiter(second)]

    def hit(n: int) -> bool:
        return limiters[n % 2].hit(limit, "user", "alice")

    with concurrent.futures.ThreadPoolExecutor(8) as workers:
        admitted = sum(workers.map(hit, range(300)))
    # Never more than the limit; at most one unused lease (the other process's) short of it.
    assert 100 - 10 <= admitted <= 100
    # Another user's budget is untouched.
    assert limiters[0].hit(limit, "user", "bob")


def test_a_large_limit_updates_the_shared_counter_once_per_lease(pool: ConnectionPool) -> None:
    storage = LeasedStorage(pool=pool, lease_fraction=0.02)
    limiter = FixedWindowRateLimiter(storage)
    limit = RateLimitItemPerMinute(6000)  # leases of 120
    key = limit.key_for("user", "carol")
    assert all(limiter.hit(limit, "user", "carol") for _ in range(150))
    assert shared_count(pool, key) == 240  # two leases taken, not 150 updates
    assert storage.get(key) == 150  # what the RateLimit-Remaining header reads: local
    assert 0 < storage.get_expiry(key) - time.time() <= 60


def test_a_small_limit_stays_exact_one_update_per_request(pool: ConnectionPool) -> None:
    # Sign-in style limits (20/minute) lease one number at a time: every process sees
    # every attempt at once.
    first, second = (LeasedStorage(pool=pool, lease_fraction=0.02) for _ in range(2))
    limit = RateLimitItemPerMinute(5)
    outcomes = [FixedWindowRateLimiter(s).hit(limit, "ip", "10.0.0.9")
                for s in (first, second, first, second, first, second, first)]
    assert outcomes == [True] * 5 + [False] * 2
    assert shared_count(pool, limit.key_for("ip", "10.0.0.9")) == 7
