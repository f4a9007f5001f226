"""``kith identity serve``: the identity service and its outbox relay."""

from __future__ import annotations

from collections.abc import Callable

from kith.common.config import ConfigError, Settings
from kith.common.service import ServiceContext, ServiceSpec, serve
from kith.identity.application import IdentityApplication
from kith.identity.grpc_api import IdentityServicer, register
from kith.identity.keys import DATA_KEYS
from kith.identity.passwords import Argon2Params, Passwords
from kith.identity.tokens import AccessTokens
from kith.protos import identity_pb2

SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name


def _application(ctx: ServiceContext) -> IdentityApplication:
    settings = ctx.settings
    return IdentityApplication(ctx.store, Passwords(Argon2Params.from_env(settings.extra)),
                    AccessTokens(settings.jwt_secret, settings.access_token_ttl_s),
                    settings.refresh_token_ttl_s,
                    session_max_age_s=_session_max_age_s(settings))


def _session_max_age_s(settings: Settings) -> int:
    """``KITH_SESSION_MAX_AGE_S``: a session family's absolute lifetime (default 90 days)."""
    raw = settings.extra.get("KITH_SESSION_MAX_AGE_S") or str(90 * 24 * 3600)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"KITH_SESSION_MAX_AGE_S must be an integer, got {raw!r}") from None
    if value < 60:
        raise ConfigError("KITH_SESSION_MAX_AGE_S must be at least 60")
    return value


SPEC = ServiceSpec(
    name="identity",
    package="kith.identity",
    grpc_services=[SERVICE_NAME],
    register=lambda ctx: [register(IdentityServicer(_application(ctx)))],
    key_tables=[DATA_KEYS],
)

COMMANDS: dict[str, Callable[[list[str]], int]] = {"serve": lambda argv: serve(SPEC)}
