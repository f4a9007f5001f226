"""Outside development nothing starts on a default, empty, short or shared secret."""

from __future__ import annotations

import pytest

from kith.common.assertion import generate_signing_key, public_key_of
from kith.common.config import ConfigError, Settings
from kith.gateway.config import GatewayConfig

STRONG = "s" * 40
KEY = generate_signing_key()


def _prod(**env: str) -> Settings:
    return Settings.from_env({"KITH_ENV": "production", **env})


@pytest.mark.parametrize("jwt", [None, "", "short-secret"])
def test_a_weak_jwt_secret_is_refused_outside_development(jwt: str | None) -> None:
    env = {"KITH_ACTOR_VERIFY_KEY": public_key_of(KEY)}
    if jwt is not None:
        env["KITH_JWT_SECRET"] = jwt
    with pytest.raises(ConfigError, match="KITH_JWT_SECRET"):
        _prod(**env).check_secrets()
    Settings.from_env({}).check_secrets()  # development: the defaults are fine


def test_actor_keys_are_required_outside_development() -> None:
    settings = _prod(KITH_JWT_SECRET=STRONG)
    with pytest.raises(ConfigError, match="KITH_ACTOR_VERIFY_KEY"):
        settings.check_secrets()
    with pytest.raises(ConfigError, match="KITH_ACTOR_SIGNING_KEY"):
        settings.signing_key()
    ok = _prod(KITH_JWT_SECRET=STRONG, KITH_ACTOR_VERIFY_KEY=public_key_of(KEY))
    ok.check_secrets()


def test_cursor_and_idempotency_secrets_are_separate_outside_development() -> None:
    settings = _prod(KITH_JWT_SECRET=STRONG)
    with pytest.raises(ConfigError, match="KITH_GATEWAY_CURSOR_SECRET"):
        GatewayConfig.from_settings(settings).secrets_for(settings)
    shared = _prod(KITH_JWT_SECRET=STRONG, KITH_GATEWAY_CURSOR_SECRET=STRONG,
                   KITH_GATEWAY_IDEMPOTENCY_SECRET="i" * 40)
    with pytest.raises(ConfigError, match="differ from KITH_JWT_SECRET"):
        GatewayConfig.from_settings(shared).secrets_for(shared)
    good = _prod(KITH_JWT_SECRET=STRONG, KITH_GATEWAY_CURSOR_SECRET="c" * 40,
                 KITH_GATEWAY_IDEMPOTENCY_SECRET="i" * 40)
    assert GatewayConfig.from_settings(good).secrets_for(good) == ("c" * 40, "i" * 40)
    dev = Settings.from_env({})
    cursor, idem = GatewayConfig.from_settings(dev).secrets_for(dev)
    assert len({cursor, idem, dev.jwt_secret}) == 3


def test_kafka_credentials_reach_every_client_configuration() -> None:
    from kith.common import kafka

    try:
        kafka.configure_security({"KITH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                  "KITH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                                  "KITH_KAFKA_SASL_USERNAME": "kith-graph",
                                  "KITH_KAFKA_SASL_PASSWORD": "pw"})
        for config in (kafka.producer_config("b:9092"), kafka.consumer_config("b:9092", "g")):
            assert config["sasl.username"] == "kith-graph"
            assert config["security.protocol"] == "SASL_SSL"
    finally:
        kafka.configure_security({})
    assert "sasl.username" not in kafka.producer_config("b:9092")


def test_every_database_including_the_gateways_can_have_its_own_url() -> None:
    """Per-service roles need per-database URLs: the gateway's used to be ignored."""
    settings = Settings.from_env({
        "KITH_PG_DSN": "postgresql://postgres@db/postgres",
        "KITH_GATEWAY_DATABASE_URL": "postgresql://kith_gateway:pw@pooler/kith_gateway"})
    assert settings.database_url("gateway").startswith(
        "postgresql://kith_gateway:pw@pooler/kith_gateway")
    assert "postgres@db/kith_post" in settings.database_url("post")
