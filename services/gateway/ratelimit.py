"""Rate limits per user, per IP and per route, counted in PostgreSQL.

``limits`` ships no PostgreSQL storage and the gateway runs several worker
workers (and possibly several hosts), so :class:`PostgresStorage` implements
the fixed-window counter on the gateway's own database: one ``UPSERT … RETURNING``
on an UNLOGGED table, with the database clock as the single time source. Every
process sees the same counters.

A round trip per limit and request cost the gateway a third of its time per
request, so the counter is **leased**: a process takes a block of a window's
budget at once (``lease_fraction`` of the limit, at least 1) with one upsert and
admits requests from it locally until it is used up or the window ends. The
shared counter is never exceeded — every admitted request holds a number at or
below the limit in the shared count — but tokens leased by one process cannot
serve another, so a caller may be refused up to ``(processes - 1) * lease``
requests early. Small limits (sign-in 20/minute, password 10/hour) get leases of
one: exact, one upsert per request, as before.

:class:`RateLimiter` applies the limits to requests (it replaced flask-limiter, whose
per-request bookkeeping cost more than the counting itself).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from flask import Response, g, request
from limits import RateLimitItem, parse
from limits.storage import Storage
from psycopg_pool import ConnectionPool

from kith.gateway.auth import TokenVerifier
from kith.gateway.errors import ApiError

log = logging.getLogger(__name__)

SCHEME = "kith+postgres"
_NOW = "extract(epoch from clock_timestamp())"


def _add(conn: psycopg.Connection, key: str, amount: int, expiry: float) -> tuple[int, float]:
    """Add ``amount`` to ``key``'s window (a new window once it expired): the count so far
    and the seconds the window has left."""
    row = conn.execute(
        f"INSERT INTO rate_limits AS r (key, count, expires_at)"
        f" VALUES (%(key)s, %(amount)s, {_NOW} + %(expiry)s)"
        f" ON CONFLICT (key) DO UPDATE SET"
        f"  count = CASE WHEN r.expires_at <= {_NOW} THEN EXCLUDED.count"
        f"               ELSE r.count + EXCLUDED.count END,"
        f"  expires_at = CASE WHEN r.expires_at <= {_NOW} THEN EXCLUDED.expires_at"
        f"                    ELSE r.expires_at END"
        f" RETURNING count, r.expires_at - {_NOW}",
        {"key": key, "amount": amount, "expiry": float(expiry)}).fetchone()
    return (int(row[0]), float(row[1])) if row else (amount, float(expiry))


class PostgresStorage(Storage):
    """A ``limits`` storage (fixed window) on the ``rate_limits`` table; pass ``pool=``."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 pool: ConnectionPool | None = None, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if pool is None:
            raise ValueError("PostgresStorage needs pool=<psycopg_pool.ConnectionPool>")
        self._pool = pool

    @property
    def base_exceptions(self) -> type[Exception]:
        return psycopg.Error

    def incr(self, key: str, expiry: int | float, amount: int = 1) -> int:
        with self._pool.connection() as conn:
            return _add(conn, key, amount, expiry)[0]

    def get(self, key: str) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(f"SELECT count FROM rate_limits WHERE key = %s"
                               f" AND expires_at > {_NOW}", (key,)).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT expires_at FROM rate_limits WHERE key = %s",
                               (key,)).fetchone()
        return float(row[0]) if row else time.time()

    def window(self, key: str) -> tuple[int, float]:
        """``(get(key), get_expiry(key))``: the count so far and when the window ends."""
        return self.get(key), self.get_expiry(key)

    def check(self) -> bool:
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._pool.connection() as conn:
            return conn.execute("DELETE FROM rate_limits").rowcount

    def clear(self, key: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM rate_limits WHERE key = %s", (key,))


@dataclass
class _Lease:
    """Numbers ``(next, last]`` of one window's shared count, held by this process."""

    position: int  # the last number handed out
    last: int  # the last number of the lease
    ends: float  # monotonic time the window ends
    lock: threading.Lock


class LeasedStorage(PostgresStorage):
    """:class:`PostgresStorage` that takes a block of numbers per upsert (see the module)."""

    STORAGE_SCHEME = ["kith+leased"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 pool: ConnectionPool | None = None, lease_fraction: float = 0.02,
                 max_lease: int = 10_000, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, pool=pool, **options)
        self.lease_fraction = lease_fraction
        self.max_lease = max_lease
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def lease_size(self, key: str) -> int:
        """``lease_fraction`` of the limit the key names (``…/<amount>/<multiples>/<unit>``,
        as ``limits`` builds keys), at least 1."""
        try:
            amount = int(key.rsplit("/", 3)[1])
        except (IndexError, ValueError):
            return 1
        return max(1, min(self.max_lease, int(amount * self.lease_fraction)))

    def _lease(self, key: str) -> _Lease:
        lease = self._leases.get(key)
        if lease is None:
            with self._lock:
                if len(self._leases) > 100_000:  # idle keys: their windows have ended
                    now = time.monotonic()
                    self._leases = {k: v for k, v in self._leases.items() if v.ends > now}
                lease = self._leases.setdefault(key, _Lease(0, 0, 0.0, threading.Lock()))
        return lease

    def incr(self, key: str, expiry: int | float, amount: int = 1) -> int:
        lease = self._lease(key)
        with lease.lock:
            now = time.monotonic()
            if now < lease.ends and lease.position + amount <= lease.last:
                lease.position += amount
                return lease.position
            size = max(amount, self.lease_size(key))
            with self._pool.connection() as conn:
                count, left = _add(conn, key, size, expiry)
            lease.position, lease.last = count - size + amount, count
            lease.ends = now + max(0.0, left)
            return lease.position

    def get(self, key: str) -> int:
        return self.window(key)[0]

    def get_expiry(self, key: str) -> float:
        return self.window(key)[1]

    def window(self, key: str) -> tuple[int, float]:
        """``(get(key), get_expiry(key))`` from one look at the lease (the headers' answer)."""
        lease = self._leases.get(key)
        now = time.monotonic()
        if lease is None or lease.ends <= now:
            return 0, time.time()
        return lease.position, time.time() + (lease.ends - now)

    def reset(self) -> int | None:
        with self._lock:
            self._leases.clear()
        return super().reset()

    def clear(self, key: str) -> None:
        with self._lock:
            self._leases.pop(key, None)
        super().clear(key)


@dataclass(frozen=True)
class RateLimits:
    """Limit strings in the ``limits`` notation, e.g. ``"600/minute"``."""

    per_user: str = "600/minute"
    per_ip: str = "1200/minute"
    # Sign-in and sign-up per address *and* username (password guessing against one
    # account, without throttling a whole office behind one address); refresh per
    # token family (junk refreshes from one address never stop anyone else's).
    sign_in: str = "20/minute"
    # Sign-in attempts per address over all usernames (rotating usernames does not help).
    sign_in_per_ip: str = "60/minute"
    # Per account over all addresses: generous, so nobody can lock an account out, but a
    # distributed guessing run against one account is still bounded.
    sign_in_per_account: str = "300/hour"
    # Password changes per signed-in account (each is an argon2 verification).
    password_change: str = "10/hour"
    enabled: bool = True
    # Share of a limit one process leases per shared-counter update (LeasedStorage).
    lease_fraction: float = 0.02


def _body_field(name: str) -> str:
    body = request.get_json(silent=True, cache=True)
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


def sign_in_key() -> str:
    """``<ip>:<username>`` of a sign-in style request (the username may be absent)."""
    return f"{request.remote_addr}:{_body_field('username')[:64]}"


def sign_in_ip_key() -> str:
    return f"ip:{request.remote_addr}"


def account_key() -> str:
    return f"account:{_body_field('username')[:64]}"


def refresh_key() -> str:
    """The refresh token's family (the part before its dot, kept across rotations);
    for a token without one, the token's own hash."""
    token = _body_field("refresh_token")
    family, dot, _ = token.partition(".")
    if dot and 8 <= len(family) <= 32:
        return f"family:{family}"
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def user_rate_key_with(verifier: TokenVerifier) -> Callable[[], str]:
    """A key function naming the verified caller (the address for anonymous calls)."""
    def user_rate_key() -> str:
        principal = verifier.decode(request.headers.get("Authorization"))
        return f"user:{principal.user_id}" if principal else f"ip:{request.remote_addr}"
    return user_rate_key


@dataclass(frozen=True)
class Limit:
    """One limit of a request: ``item`` counted per ``key()`` within ``scope``.

    ``shared`` limits (the application-wide ones) count over every route; a route's own
    limits are not shared. ``exempt_when()`` true: the limit does not apply to this request.
    """

    item: RateLimitItem
    key: Callable[[], str]
    scope: str
    shared: bool = False
    exempt_when: Callable[[], bool] | None = None

    def storage_key(self, prefix: str, key: str) -> str:
        """``item.key_for(prefix, key, scope)``, the storage key, from parts made once."""
        return f"{self.item.namespace}/{prefix}/{key}{self._tail}"

    @functools.cached_property
    def _tail(self) -> str:
        i = self.item
        return f"/{self.scope}/{i.amount}/{i.multiples}/{i.GRANULARITY.name}"

    @functools.cached_property
    def expiry(self) -> int:
        return self.item.get_expiry()


@dataclass
class _Counted:
    """The limit a response's ``RateLimit-*`` headers (and a 429's ``Retry-After``) describe."""

    item: RateLimitItem
    key: str  # the storage key


class RateLimiter:
    """Fixed-window limits per user, per address and per route, counted in ``storage``.

    The same limits, storage keys (``LIMITER/kith/<key>/<scope>/<limit>``) and answers as
    flask-limiter gave, without its per-request machinery (a fifth of a home-feed page's
    gateway CPU): application limits are checked before every ``/v1`` request that matched
    a route, a route's own limits when its view is called; the first limit exceeded is a 429
    ``rate_limited`` with ``Retry-After``; a failing storage lets the request through (logged).
    """

    PREFIX = "kith"

    def __init__(self, storage: PostgresStorage, application: list[Limit]) -> None:
        self.storage = storage
        self._incr = storage.incr
        self._application = _in_order(application)

    def check_application(self) -> None:
        """``before_request``: the application-wide limits of a ``/v1`` route."""
        if request.url_rule is None or not request.path.startswith("/v1/"):
            return  # unmatched (404/405) and non-API requests are not counted
        self._evaluate(self._application)

    def wrap(self, view: Callable[..., Any], limits: list[Limit]) -> Callable[..., Any]:
        """``view`` checking its route's own ``limits`` first."""
        ordered = _in_order(limits)

        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            if request.path.startswith("/v1/"):
                self._evaluate(ordered)
            return view(*args, **kwargs)

        return limited

    def _evaluate(self, limits: list[Limit]) -> None:
        counted: list[tuple[Limit, str]] = []
        breached: tuple[Limit, str] | None = None
        try:
            for limit in limits:
                if limit.exempt_when is not None and limit.exempt_when():
                    continue
                key = limit.key()
                if not key:
                    log.error("Skipping limit: %s. Empty value found in parameters.",
                              limit.item)
                    continue
                full = limit.storage_key(self.PREFIX, key)
                counted.append((limit, full))
                if self._incr(full, limit.expiry) > limit.item.amount:
                    log.info("ratelimit %s (%s) exceeded at endpoint: %s", limit.item, key,
                             limit.scope)
                    breached = (limit, full)
                    break
        except Exception:  # the counters' store is down: let the request through
            log.exception("Failed to rate limit. Swallowing error")
            return
        if breached is None and counted:
            own = [c for c in counted if not c[0].shared]
            chosen = own[0] if own else counted[0]
            g.rate_limit = _Counted(chosen[0].item, chosen[1])
        if breached is not None:
            g.rate_limit = current = _Counted(breached[0].item, breached[1])
            retry = max(1, math.ceil(self.reset_at(current) - time.time()))
            raise ApiError(429, "rate_limited", "too many requests; slow down",
                           {"limit": str(breached[0].item)}, headers={"Retry-After": str(retry)})

    def reset_at(self, counted: _Counted) -> int:
        return _window_end(self.storage.get_expiry(counted.key))

    def headers(self, response: Response) -> Response:
        """``RateLimit-Limit``/``-Remaining``/``-Reset`` (IETF draft; reset in seconds)."""
        current: _Counted | None = g.get("rate_limit")
        if current is None or not request.path.startswith("/v1/"):
            return response
        try:
            count, expiry = self.storage.window(current.key)
        except Exception:  # the counters' store is down: the request went through anyway
            return response
        remaining = max(0, current.item.amount - count)
        reset = max(0, math.ceil(_window_end(expiry) - time.time()))
        response.headers["RateLimit-Limit"] = str(current.item.amount)
        response.headers["RateLimit-Remaining"] = str(remaining)
        response.headers["RateLimit-Reset"] = str(reset)
        return response


def _window_end(expiry: float) -> int:
    """When a window ending at ``expiry`` ends, in epoch seconds rounded up as flask-limiter
    did."""
    return int(expiry + 1)


def _in_order(limits: list[Limit]) -> list[Limit]:
    """Shortest window first (a stable sort, as flask-limiter evaluated them)."""
    return sorted(limits, key=lambda lim: lim.item.GRANULARITY.seconds)


def install_limiter(pool: ConnectionPool, limits: RateLimits,
                    verifier: TokenVerifier) -> RateLimiter:
    """Per-IP and per-user limits over all ``/v1`` routes; 429s in the public error shape.
    The app calls :meth:`RateLimiter.check_application` before and :meth:`RateLimiter.headers`
    after each request (when ``limits.enabled``); route limits are added by wrapping views
    with :meth:`RateLimiter.wrap`."""

    def ip_key() -> str:
        return request.remote_addr or "unknown"

    def user_key() -> str:
        return getattr(g, "rate_user", None) or "anonymous"

    def no_user() -> bool:
        principal = verifier.decode(request.headers.get("Authorization"))
        g.rate_user = principal.user_id if principal else None
        return principal is None

    storage = LeasedStorage(pool=pool, lease_fraction=limits.lease_fraction)
    limiter = RateLimiter(storage, [
        Limit(parse(limits.per_user), user_key, "user", shared=True, exempt_when=no_user),
        Limit(parse(limits.per_ip), ip_key, "ip", shared=True),
    ])
    return limiter
