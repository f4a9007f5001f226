"""Gateway knobs, read from ``Settings.extra`` (``KITH_GATEWAY_*`` variables) at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from kith.common.config import ConfigError, Settings
from kith.gateway.proxies import parse_cidrs
from kith.gateway.ratelimit import RateLimits
from kith.gateway.web import default_web_dir

T = TypeVar("T", int, float)


@dataclass(frozen=True)
class GatewayConfig:
    workers: int = 2
    threads: int = 16
    max_body_bytes: int = 64 * 1024
    rpc_deadline_s: float = 5.0
    revocation_cache_s: float = 5.0
    trusted_proxies: int = 0
    trusted_proxy_cidrs: tuple[str, ...] = ()
    stream_max_s: float = 300.0
    stream_heartbeat_s: float = 15.0
    streams_per_user: int = 3
    streams_per_process: int = 2000  # open /v1/stream connections of one stream server
    stream_port: int = 8081
    stream_threads: int = 8  # the stream server's executor for blocking calls
    stream_upstream: str = ""  # development: where the stream server proxies other paths
    stream_opens_per_minute: int = 30  # per user and stream server (each may read the log)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    web_dir: Path = field(default_factory=default_web_dir)
    cors_origins: tuple[str, ...] = ()
    cursor_secret: str = ""  # empty: derived from the JWT secret (development only)
    idempotency_secret: str = ""  # empty: derived from the JWT secret (development only)
    idempotency_purge_s: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        env = settings.extra
        return cls(
            workers=_num(env, "KITH_GATEWAY_WORKERS", 2, int),
            threads=_num(env, "KITH_GATEWAY_THREADS", 16, int),
            max_body_bytes=_num(env, "KITH_GATEWAY_MAX_BODY_BYTES", 64 * 1024, int),
            rpc_deadline_s=_num(env, "KITH_GATEWAY_RPC_DEADLINE_S", 5.0, float),
            revocation_cache_s=_num(env, "KITH_GATEWAY_REVOCATION_CACHE_S", 5.0, float),
            trusted_proxies=_num(env, "KITH_GATEWAY_TRUSTED_PROXIES", 0, int),
            trusted_proxy_cidrs=_cidrs(env.get("KITH_GATEWAY_TRUSTED_PROXY_CIDRS", "")),
            stream_max_s=_num(env, "KITH_GATEWAY_STREAM_MAX_S", 300.0, float),
            stream_heartbeat_s=_num(env, "KITH_GATEWAY_STREAM_HEARTBEAT_S", 15.0, float),
            streams_per_user=_num(env, "KITH_GATEWAY_STREAMS_PER_USER", 3, int),
            streams_per_process=_num(env, "KITH_GATEWAY_STREAMS_PER_PROCESS", 2000, int),
            stream_port=_num(env, "KITH_GATEWAY_STREAM_PORT", 8081, int),
            stream_threads=max(1, _num(env, "KITH_GATEWAY_STREAM_THREADS", 8, int)),
            stream_upstream=env.get("KITH_GATEWAY_STREAM_UPSTREAM", "").rstrip("/"),
            stream_opens_per_minute=max(
                1, _num(env, "KITH_GATEWAY_STREAM_OPENS_PER_MINUTE", 30, int)),
            cursor_secret=env.get("KITH_GATEWAY_CURSOR_SECRET", ""),
            idempotency_secret=env.get("KITH_GATEWAY_IDEMPOTENCY_SECRET", ""),
            idempotency_purge_s=_num(env, "KITH_GATEWAY_IDEMPOTENCY_PURGE_S", 600.0, float),
            rate_limits=RateLimits(
                per_user=env.get("KITH_GATEWAY_RATE_LIMIT_USER", RateLimits.per_user),
                per_ip=env.get("KITH_GATEWAY_RATE_LIMIT_IP", RateLimits.per_ip),
                sign_in=env.get("KITH_GATEWAY_RATE_LIMIT_SIGN_IN", RateLimits.sign_in),
                sign_in_per_ip=env.get("KITH_GATEWAY_RATE_LIMIT_SIGN_IN_IP",
                                       RateLimits.sign_in_per_ip),
                sign_in_per_account=env.get("KITH_GATEWAY_RATE_LIMIT_SIGN_IN_ACCOUNT",
                                            RateLimits.sign_in_per_account),
                password_change=env.get("KITH_GATEWAY_RATE_LIMIT_PASSWORD",
                                        RateLimits.password_change),
                enabled=env.get("KITH_GATEWAY_RATE_LIMITS", "on") != "off",
                lease_fraction=_num(env, "KITH_GATEWAY_RATE_LIMIT_LEASE", 0.02, float),
            ),
            web_dir=Path(env.get("KITH_GATEWAY_WEB_DIR") or default_web_dir()),
            cors_origins=tuple(o.strip().rstrip("/") for o in
                               env.get("KITH_GATEWAY_CORS_ORIGINS", "").split(",") if o.strip()),
        )

    def secrets_for(self, settings: Settings) -> tuple[str, str]:
        """``(cursor secret, idempotency secret)``: each its own outside development."""
        found = []
        for name, value in (("KITH_GATEWAY_CURSOR_SECRET", self.cursor_secret),
                            ("KITH_GATEWAY_IDEMPOTENCY_SECRET", self.idempotency_secret)):
            if not value:
                if not settings.development:
                    raise ConfigError(f"{name} must be set outside development")
                value = f"{name}\n{settings.jwt_secret}"
            elif not settings.development and (len(value) < 32
                                                 or value == settings.jwt_secret):
                raise ConfigError(f"{name} must be at least 32 characters and differ from "
                                  "KITH_JWT_SECRET")
            found.append(value)
        return found[0], found[1]


def _cidrs(raw: str) -> tuple[str, ...]:
    try:
        return tuple(str(n) for n in parse_cidrs(raw))
    except ValueError:
        raise ConfigError("KITH_GATEWAY_TRUSTED_PROXY_CIDRS must be comma-separated networks, "
                          f"got {raw!r}") from None


def _num(env: Mapping[str, str], name: str, default: T, kind: type[T]) -> T:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value
