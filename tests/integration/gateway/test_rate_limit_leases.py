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
from kith.gateway import metrics
from kith.gateway.app import create_app
from kith.gateway.ratelimit import LeasedStorage, RateLimits
from tests.integration.gateway.harness import Gateway, assert_error, gateway_config, serve_app


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


def test_every_v1_answer_states_its_budget_and_the_one_past_it_is_refused(
        gateway: Gateway, pool: ConnectionPool) -> None:
    # The per-user budget of an ordinary route, then a route with its own (sign-in) limit:
    # the headers name the limit that applies, a refusal says which one and when to retry,
    # and the shared counters keep the keys they always had.
    limits = RateLimits(per_user="3/minute", per_ip="1000/minute", sign_in="2/minute")
    app = create_app(gateway.settings, gateway_config(rate_limits=limits))
    server, url = serve_app(app)
    try:
        user = gateway.signup("budgeted")
        user.base_url = url
        answers = [user.get("/v1/me") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["RateLimit-Limit"] for a in answers] == ["3"] * 4
        assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert all(0 <= int(a.headers["RateLimit-Reset"]) <= 61 for a in answers)
        refused = assert_error(answers[-1], 429, "rate_limited")
        assert refused["details"] == {"limit": "3 per 1 minute"}
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 61
        assert shared_count(pool, f"LIMITER/kith/{user.user_id}/user/3/1/minute") == 4

        anon = gateway.client()
        anon.base_url = url
        unrouted = anon.delete("/v1/no-such-route")  # no route: neither counted nor stated
        assert unrouted.status_code == 405 and "RateLimit-Limit" not in unrouted.headers
        guesses = [anon.post("/v1/sessions", {"username": "nobody_here", "password": "x" * 12})
                   for _ in range(3)]
        assert [g.status_code for g in guesses] == [401, 401, 429]
        assert [g.headers["RateLimit-Limit"] for g in guesses] == ["2"] * 3  # the route's own
        assert assert_error(guesses[-1], 429, "rate_limited")["details"] == {
            "limit": "2 per 1 minute"}
        assert shared_count(pool, "LIMITER/kith/127.0.0.1:nobody_here/"
                                  "create_session:create_session:sign_in_key/2/1/minute") == 3
    finally:
        server.shutdown()
        app.extensions["kith"].close()


def _answered(method: str, route: str, status: int) -> float:
    """``kith_gateway_requests_total`` for one label set (this process's registry)."""
    for family in metrics.REQUESTS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels == {
                    "method": method, "route": route, "status": str(status)}:
                return sample.value
    return 0.0


def test_a_request_refused_by_the_application_limits_keeps_its_request_id_and_is_counted(
        gateway: Gateway) -> None:
    # The refusal comes before the route's view runs; it is still this request's answer:
    # it echoes this request's id (not the one the serving thread handled before) and
    # shows in the request metrics like any other answer.
    limits = RateLimits(per_user="2/minute", per_ip="1000/minute")
    app = create_app(gateway.settings, gateway_config(rate_limits=limits, threads=1))
    server, url = serve_app(app)
    try:
        user = gateway.signup("counted")
        user.base_url = url
        refused_before = _answered("GET", "/v1/me", 429)
        answers = [user.get("/v1/me", headers={"X-Request-Id": f"req-{n}"}) for n in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 429, 429]
        assert [a.headers["X-Request-Id"] for a in answers] == [f"req-{n}" for n in range(4)]
        fresh = user.get("/v1/me")  # no id sent: a fresh one, not the last request's
        assert fresh.status_code == 429 and fresh.headers["X-Request-Id"] != "req-3"
        assert _answered("GET", "/v1/me", 429) - refused_before == 3
    finally:
        server.shutdown()
        app.extensions["kith"].close()
