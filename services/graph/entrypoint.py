"""``kith graph serve``: the graph service, its outbox relay and its account-deletion projection."""

from __future__ import annotations

from collections.abc import Callable

from kith.common.config import ConfigError
from kith.common.service import ServiceContext, ServiceSpec, serve
from kith.graph.account_deletions import AccountDeletions
from kith.graph.application import GraphApplication
from kith.graph.domain.rules import MIN_CAP
from kith.graph.grpc_api import GraphServicer, register
from kith.graph.niche_keys import NICHE_KEYS
from kith.graph.profile_store import PROFILE_KEYS
from kith.protos import graph_pb2

SERVICE_NAME = graph_pb2.DESCRIPTOR.services_by_name["GraphService"].full_name


def _application(ctx: ServiceContext) -> GraphApplication:
    if ctx.settings.niche_max_cap < MIN_CAP:
        raise ConfigError(f"KITH_NICHE_MAX_CAP must be at least {MIN_CAP}")
    return GraphApplication(ctx.store, ctx.settings.niche_max_cap)


SPEC = ServiceSpec(
    name="graph",
    package="kith.graph",
    grpc_services=[SERVICE_NAME],
    register=lambda ctx: [register(GraphServicer(_application(ctx)))],
    projections=lambda ctx: [AccountDeletions(_application(ctx), ctx.settings.topic("identity"))],
    key_tables=[PROFILE_KEYS, NICHE_KEYS],
)

COMMANDS: dict[str, Callable[[list[str]], int]] = {"serve": lambda argv: serve(SPEC)}
