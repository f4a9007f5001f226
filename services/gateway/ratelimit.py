"""Rate limits per user and per IP (flask-limiter), counted in PostgreSQL.

``limits`` ships no PostgreSQL storage and the gateway runs several gunicorn
workers (and possibly several hosts), so :class:`PostgresStorage` implements
the fixed-window counter on the gateway's own database: one ``UPSERT … RETURNING``
per limit and request, on an UNLOGGED table, with the database clock as the
single time source. Every process sees the same counters.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded
from limits.storage import Storage
from psycopg_pool import ConnectionPool

from kith.gateway.auth import TokenVerifier
from kith.gateway.errors import error_response

SCHEME = "kith+postgres"
_NOW = "extract(epoch from clock_timestamp())"


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
            row = conn.execute(
                f"INSERT INTO rate_limits AS r (key, count, expires_at)"
                f" VALUES (%(key)s, %(amount)s, {_NOW} + %(expiry)s)"
                f" ON CONFLICT (key) DO UPDATE SET"
                f"  count = CASE WHEN r.expires_at <= {_NOW} THEN EXCLUDED.count"
                f"               ELSE r.count + EXCLUDED.count END,"
                f"  expires_at = CASE WHEN r.expires_at <= {_NOW} THEN EXCLUDED.expires_at"
                f"                    ELSE r.expires_at END"
                f" RETURNING count",
                {"key": key, "amount": amount, "expiry": float(expiry)}).fetchone()
        return int(row[0]) if row else amount

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


@dataclass(frozen=True)
class RateLimits:
    """Limit strings in the ``limits`` notation, e.g. ``"600/minute"``."""

    per_user: str = "600/minute"
    per_ip: str = "1200/minute"
    # Sign-in, sign-up and refresh, per IP *and* username: throttles password guessing
    # against one account without throttling a whole office behind one address.
    sign_in: str = "20/minute"
    enabled: bool = True


def sign_in_key() -> str:
    """``<ip>:<username>`` of a sign-in style request (the username may be absent)."""
    body = request.get_json(silent=True, cache=True)
    username = body.get("username") if isinstance(body, dict) else None
    return f"{request.remote_addr}:{username if isinstance(username, str) else ''}"


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
        storage_uri=f"{SCHEME}://", storage_options={"pool": pool},  # type: ignore[dict-item]
        application_limits=[
            ApplicationLimit(limits.per_user, key_function=user_key, scope="user",
                             exempt_when=no_user),
            ApplicationLimit(limits.per_ip, key_function=ip_key, scope="ip"),
        ],
        # X-RateLimit-* headers would cost two more queries per request; a 429 still says
        # when to retry. A storage failure lets requests through (logged), rather than
        # turning a database hiccup into an outage.
        headers_enabled=False, swallow_errors=True, key_prefix="kith",
    )
    limiter.request_filter(lambda: not request.path.startswith("/v1/"))

    @app.errorhandler(RateLimitExceeded)
    def too_many(exc: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        retry = max(1, math.ceil(current.reset_at - time.time())) if current else 1
        return error_response(429, "rate_limited", "too many requests; slow down",
                              {"limit": str(exc.description)},
                              headers={"Retry-After": str(retry)})

    return limiter
