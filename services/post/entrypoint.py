"""``kith post serve``: the post service, its outbox relay and its account-deletion projection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kith.common.config import env_int
from kith.common.freshness import ProjectionFreshness
from kith.common.projection import Projection
from kith.common.rpc import channel
from kith.common.service import ServiceContext, ServiceSpec, serve
from kith.post.account_deletions import AccountDeletions
from kith.post.application import PostApplication
from kith.post.clients import GraphClient
from kith.post.grpc_api import register
from kith.post.keys import AUTHOR_KEYS
from kith.post.membership import DEFAULT_MAX_LAG_MS, MembershipProjection
from kith.post.membership import NAME as MEMBERSHIPS
from kith.protos import post_pb2

SERVICE_NAME = post_pb2.DESCRIPTOR.services_by_name["PostService"].full_name


def _freshness(ctx: ServiceContext) -> ProjectionFreshness | None:
    """The membership view's lag gate, one per process (``None``: no view, always graph)."""
    max_lag_ms = env_int(ctx.settings.extra, "KITH_POST_MEMBER_VIEW_MAX_LAG_MS",
                         DEFAULT_MAX_LAG_MS)
    if not ctx.settings.kafka_bootstrap or max_lag_ms <= 0:
        return None
    found: ProjectionFreshness | None = getattr(ctx, "_member_view_freshness", None)
    if found is None:
        found = ProjectionFreshness(MEMBERSHIPS, [ctx.settings.topic("graph")], ctx.dsn,
                                    ctx.settings.kafka_bootstrap, max_lag_ms / 1000)
        ctx._member_view_freshness = found  # type: ignore[attr-defined]
    return found


def _application(ctx: ServiceContext) -> PostApplication:
    freshness = _freshness(ctx)
    return PostApplication(ctx.store, GraphClient(channel(ctx.settings.grpc_addr("graph"))),
                           members=freshness)


def _projections(ctx: ServiceContext) -> list[Projection]:
    found: list[Projection] = [AccountDeletions(_application(ctx),
                                                ctx.settings.topic("identity"))]
    if _freshness(ctx) is not None:
        found.append(MembershipProjection(ctx.settings.topic("graph")))
    return found


def _background(ctx: ServiceContext) -> list[Callable[[threading.Event], Any]]:
    freshness = _freshness(ctx)
    return [freshness.run] if freshness is not None else []


SPEC = ServiceSpec(
    name="post",
    package="kith.post",
    grpc_services=[SERVICE_NAME],
    register=lambda ctx: [register(_application(ctx))],
    projections=_projections,
    background=_background,
    key_tables=[AUTHOR_KEYS],
)

COMMANDS: dict[str, Callable[[list[str]], int]] = {"serve": lambda argv: serve(SPEC)}
