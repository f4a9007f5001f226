"""Rate limits per user and per IP (flask-limiter), counted in PostgreSQL.

``limits`` ships no PostgreSQL storage and the gateway runs several gunicorn
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
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded
from flask_limiter._limits import RuntimeLimit
from limits.storage import Storage
from psycopg_pool import ConnectionPool

from kith.gateway.auth import TokenVerifier
from kith.gateway.errors import error_response

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
        lease = self._leases.get(key)
        if lease is None or lease.ends <= time.monotonic():
            return 0
        return lease.position

    def get_expiry(self, key: str) -> float:
        lease = self._leases.get(key)
        now = time.monotonic()
        if lease is None or lease.ends <= now:
            return time.time()
        return time.time() + (lease.ends - now)

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


def rate_limit_headers(limiter: Limiter, response: Response) -> Response:
    """``RateLimit-Limit``/``-Remaining``/``-Reset`` (IETF draft; reset in seconds)."""
    current = limiter.current_limit
    if current is None or not request.path.startswith("/v1/"):
        return response
    try:
        remaining = max(0, int(current.remaining))
        reset = max(0, math.ceil(current.reset_at - time.time()))
    except Exception:  # the counters' store is down: the request went through anyway
        return response
    response.headers["RateLimit-Limit"] = str(current.limit.amount)
    response.headers["RateLimit-Remaining"] = str(remaining)
    response.headers["RateLimit-Reset"] = str(reset)
    return response


class ParsedOnce(ApplicationLimit):
    """An application limit whose limit string is parsed once, not on every request
    (flask-limiter re-parses it per request: 16 % of a gateway worker's CPU under load)."""

    def __iter__(self) -> Iterator[RuntimeLimit]:
        parsed = self.__dict__.get("_parsed")
        if parsed is None:
            parsed = self.__dict__["_parsed"] = list(super().__iter__())
        return iter(parsed)


def install_limiter(app: Flask, pool: ConnectionPool, limits: RateLimits,
                    verifier: TokenVerifier) -> Limiter:
    """Per-IP and per-user limits over all ``/v1`` routes; 429s in the public error shape."""

    def ip_key() -> str:
        return request.remote_addr or "unknown"

    def user_key() -> str:
        return getattr(g, "rate_user", None) or "anonymous"

    def no_user() -> bool:
        principal = verifier.decode(request.headers.get("Authorization"))
        g.rate_user = principal.user_id if principal else None
        return principal is None

    limiter = Limiter(
        ip_key, app=app, enabled=limits.enabled, strategy="fixed-window",
        storage_uri="kith+leased://",
        storage_options={"pool": pool,  # type: ignore[dict-item]
                         "lease_fraction": limits.lease_fraction},  # type: ignore[dict-item]
        application_limits=[
            ParsedOnce(limits.per_user, key_function=user_key, scope="user",
                       exempt_when=no_user),
            ParsedOnce(limits.per_ip, key_function=ip_key, scope="ip"),
        ],
        # RateLimit-* headers are added below (IETF draft names, reset in seconds). A
        # storage failure lets requests through (logged), rather than turning a database
        # hiccup into an outage.
        headers_enabled=False, swallow_errors=True, key_prefix="kith",
    )
    limiter.request_filter(lambda: not request.path.startswith("/v1/"))
    app.after_request(lambda response: rate_limit_headers(limiter, response))

    @app.errorhandler(RateLimitExceeded)
    def too_many(exc: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        retry = max(1, math.ceil(current.reset_at - time.time())) if current else 1
        return error_response(429, "rate_limited", "too many requests; slow down",
                              {"limit": str(exc.description)},
                              headers={"Retry-After": str(retry)})

    return limiter
