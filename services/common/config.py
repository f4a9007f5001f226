"""Configuration, read once from environment variables at the edge.

Every variable is documented in the README's configuration table; nothing
below the entry points reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from kith.common.crypto import Keyring

SERVICES = ("identity", "graph", "post", "messaging", "feed", "media")  # each has a topic
DATABASES = (*SERVICES, "gateway")  # each has a database of its own
DEFAULT_GRPC_PORTS = {
    "identity": 50051,
    "graph": 50052,
    "post": 50053,
    "messaging": 50054,
    "feed": 50055,
    "media": 50056,
}


DEFAULT_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"
# Session limits and TCP liveness of every database connection (``KITH_DB_*``): a statement,
# a lock wait or an idle transaction cannot hold on for ever, and a dead or partitioned peer
# is noticed within seconds instead of when TCP gives up (minutes to hours).
DB_SESSION_DEFAULTS = {
    "KITH_DB_STATEMENT_TIMEOUT_MS": 30_000,
    "KITH_DB_LOCK_TIMEOUT_MS": 10_000,
    "KITH_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS": 60_000,
    "KITH_DB_CONNECT_TIMEOUT_S": 5,
    "KITH_DB_KEEPALIVES_IDLE_S": 5,
    "KITH_DB_KEEPALIVES_INTERVAL_S": 2,
    "KITH_DB_KEEPALIVES_COUNT": 3,
    "KITH_DB_TCP_USER_TIMEOUT_MS": 10_000,
}


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    """The integer variable ``name`` (unset or empty: ``default``), or a :class:`ConfigError`."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """The yes/no variable ``name``: ``true``/``1`` or ``false``/``0`` (unset or empty: no)."""
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")



@dataclass(frozen=True)
class Settings:
    """Everything a Kith process needs to know about its surroundings."""

    home: Path = Path(".kith")
    pg_dsn: str | None = None
    kafka_bootstrap: str | None = None
    pg_port: int = 54329
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    topic_partitions: int = 12
    topic_prefix: str = ""
    db_prefix: str = "kith"
    grpc_addrs: Mapping[str, str] = field(default_factory=dict)
    database_urls: Mapping[str, str] = field(default_factory=dict)
    gateway_port: int = 8080
    jwt_secret: str = DEFAULT_JWT_SECRET
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    log_level: str = "INFO"
    log_format: str = "json"
    niche_max_cap: int = 500
    feed_size: int = 1000
    conversation_max_members: int = 50
    environment: str = "development"
    actor_signing_key: str = ""  # gateway only; empty: the development key
    actor_verify_key: str = ""  # every service; empty: the development key
    key_encryption_keys: str = ""  # services with key tables; empty: the development KEK
    accept_unwrapped_keys: bool = False  # while `kith keys wrap` migrates an old database
    extra: Mapping[str, str] = field(default_factory=dict)
    db_session: Mapping[str, int] = field(default_factory=lambda: dict(DB_SESSION_DEFAULTS))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        grpc_addrs = {
            svc: env.get(f"KITH_{svc.upper()}_ADDR") or f"127.0.0.1:{port}"
            for svc, port in DEFAULT_GRPC_PORTS.items()
        }
        database_urls = {
            svc: env[f"KITH_{svc.upper()}_DATABASE_URL"]
            for svc in DATABASES  # the gateway's own database too
            if env.get(f"KITH_{svc.upper()}_DATABASE_URL")
        }
        partitions = env_int(env, "KITH_TOPIC_PARTITIONS", 12)
        if partitions < 1:
            raise ConfigError("KITH_TOPIC_PARTITIONS must be at least 1")
        log_format = env.get("KITH_LOG_FORMAT", "json")
        if log_format not in ("json", "text"):
            raise ConfigError("KITH_LOG_FORMAT must be 'json' or 'text'")
        db_session = {name: env_int(env, name, default)
                      for name, default in DB_SESSION_DEFAULTS.items()}
        if any(v < 0 for v in db_session.values()):
            raise ConfigError("KITH_DB_* timeouts must not be negative")
        return cls(
            db_session=db_session,
            home=Path(env.get("KITH_HOME", ".kith")).resolve(),
            pg_dsn=env.get("KITH_PG_DSN") or None,
            kafka_bootstrap=env.get("KITH_KAFKA_BOOTSTRAP") or None,
            pg_port=env_int(env, "KITH_PG_PORT", 54329),
            kafka_port=env_int(env, "KITH_KAFKA_PORT", 19092),
            kafka_controller_port=env_int(env, "KITH_KAFKA_CONTROLLER_PORT", 19093),
            topic_partitions=partitions,
            topic_prefix=env.get("KITH_TOPIC_PREFIX", ""),
            db_prefix=env.get("KITH_DB_PREFIX", "kith"),
            grpc_addrs=grpc_addrs,
            database_urls=database_urls,
            gateway_port=env_int(env, "KITH_GATEWAY_PORT", 8080),
            jwt_secret=env.get("KITH_JWT_SECRET", cls.jwt_secret),
            access_token_ttl_s=env_int(env, "KITH_ACCESS_TOKEN_TTL_S", 900),
            refresh_token_ttl_s=env_int(env, "KITH_REFRESH_TOKEN_TTL_S", 30 * 24 * 3600),
            log_level=env.get("KITH_LOG_LEVEL", "INFO").upper(),
            log_format=log_format,
            niche_max_cap=env_int(env, "KITH_NICHE_MAX_CAP", 500),
            feed_size=env_int(env, "KITH_FEED_SIZE", 1000),
            conversation_max_members=env_int(env, "KITH_CONVERSATION_MAX_MEMBERS", 50),
            environment=env.get("KITH_ENV", "development"),
            actor_signing_key=env.get("KITH_ACTOR_SIGNING_KEY", ""),
            actor_verify_key=env.get("KITH_ACTOR_VERIFY_KEY", ""),
            key_encryption_keys=env.get("KITH_KEY_ENCRYPTION_KEYS", ""),
            accept_unwrapped_keys=env_flag(env, "KITH_KEYS_ACCEPT_UNWRAPPED"),
            extra={k: v for k, v in env.items() if k.startswith("KITH_")},
        )

    @property
    def development(self) -> bool:
        return self.environment == "development"

    def signing_key(self) -> str:
        """The actor-assertion signing key (the development one only in development)."""
        if self.actor_signing_key:
            return self.actor_signing_key
        if not self.development:
            raise ConfigError("KITH_ACTOR_SIGNING_KEY must be set outside development")
        from kith.common.assertion import dev_signing_key
        return dev_signing_key()

    def verify_key(self) -> str:
        """The actor-assertion verification key (the development one only in development)."""
        if self.actor_verify_key:
            return self.actor_verify_key
        if not self.development:
            raise ConfigError("KITH_ACTOR_VERIFY_KEY must be set outside development")
        from kith.common.assertion import dev_verify_key
        return dev_verify_key()

    def keyring(self) -> Keyring:
        """The KEKs that wrap this service's data keys (DESIGN §5b): ``KITH_KEY_ENCRYPTION_KEYS``
        = ``id:base64key[,older…]``; the development KEK only in development."""
        from kith.common.crypto import Keyring
        if not self.key_encryption_keys:
            if not self.development:
                raise ConfigError("KITH_KEY_ENCRYPTION_KEYS must be set outside development")
            return Keyring.development()
        try:
            keyring = Keyring.parse(self.key_encryption_keys,
                                    accept_unwrapped=self.development or self.accept_unwrapped_keys)
        except ValueError as exc:
            raise ConfigError(f"KITH_KEY_ENCRYPTION_KEYS: {exc}") from None
        if keyring.is_development and not self.development:
            raise ConfigError("KITH_KEY_ENCRYPTION_KEYS holds the development KEK outside "
                              "development")
        return keyring

    def check_secrets(self) -> None:
        """Refuse to run outside development on default, empty or short secrets."""
        if self.development:
            return
        if self.jwt_secret == DEFAULT_JWT_SECRET or len(self.jwt_secret) < 32:
            raise ConfigError("KITH_JWT_SECRET must be set to at least 32 characters "
                              "(not the development default) outside development")
        self.verify_key()

    def topic(self, service: str) -> str:
        """The event topic of a service: ``<service>.events.v1`` (with an optional prefix)."""
        return f"{self.topic_prefix}{service}.events.v1"

    def database_url(self, service: str) -> str:
        """The DSN of a service's own database, carrying the ``KITH_DB_*`` session limits
        and TCP keepalives (parameters the URL already sets are kept)."""
        if service in self.database_urls:
            return with_session_limits(self.database_urls[service], self.db_session)
        if not self.pg_dsn:
            raise ConfigError(
                f"no database for {service}: "
                f"set KITH_PG_DSN (or KITH_{service.upper()}_DATABASE_URL)"
            )
        return with_session_limits(with_database(self.pg_dsn, f"{self.db_prefix}_{service}"),
                                   self.db_session)

    def grpc_addr(self, service: str) -> str:
        return self.grpc_addrs.get(service) or f"127.0.0.1:{DEFAULT_GRPC_PORTS[service]}"

    def require_kafka(self) -> str:
        if not self.kafka_bootstrap:
            raise ConfigError("KITH_KAFKA_BOOTSTRAP is not set")
        return self.kafka_bootstrap


def with_database(dsn: str, dbname: str) -> str:
    """Return ``dsn`` pointing at database ``dbname`` (URL-style DSNs only)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"KITH_PG_DSN must be a postgresql:// URL, got {dsn!r}")
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def with_session_limits(dsn: str, limits: Mapping[str, int]) -> str:
    """``dsn`` with libpq parameters for the ``KITH_DB_*`` limits (URL-style DSNs only)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        return dsn
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    get = limits.get
    options = " ".join(
        f"-c {name}={get(var, DB_SESSION_DEFAULTS[var])}" for name, var in (
            ("statement_timeout", "KITH_DB_STATEMENT_TIMEOUT_MS"),
            ("lock_timeout", "KITH_DB_LOCK_TIMEOUT_MS"),
            ("idle_in_transaction_session_timeout", "KITH_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS"),
        ) if f"{name}=" not in query.get("options", ""))
    if options:
        query["options"] = f"{query.get('options', '')} {options}".strip()
    for param, var in (("connect_timeout", "KITH_DB_CONNECT_TIMEOUT_S"),
                       ("keepalives_idle", "KITH_DB_KEEPALIVES_IDLE_S"),
                       ("keepalives_interval", "KITH_DB_KEEPALIVES_INTERVAL_S"),
                       ("keepalives_count", "KITH_DB_KEEPALIVES_COUNT"),
                       ("tcp_user_timeout", "KITH_DB_TCP_USER_TIMEOUT_MS")):
        query.setdefault(param, str(get(var, DB_SESSION_DEFAULTS[var])))
    query.setdefault("keepalives", "1")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote),
                       parts.fragment))
