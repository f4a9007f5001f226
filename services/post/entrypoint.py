"""``kith post serve``: the post service, its outbox relay and its account-deletion projection."""

from __future__ import annotations

from collections.abc import Callable

from kith.common.rpc import channel
from kith.common.service import ServiceContext, ServiceSpec, serve
from kith.post.account_deletions import AccountDeletions
from kith.post.application import PostApplication
from kith.post.clients import GraphClient
from kith.post.grpc_api import register
from kith.post.keys import AUTHOR_KEYS
from kith.protos import post_pb2

SERVICE_NAME = post_pb2.DESCRIPTOR.services_by_name["PostService"].full_name


def _application(ctx: ServiceContext) -> PostApplication:
    return PostApplication(ctx.store, GraphClient(channel(ctx.settings.grpc_addr("graph"))))


SPEC = ServiceSpec(
    name="post",
    package="kith.post",
    grpc_services=[SERVICE_NAME],
    register=lambda ctx: [register(_application(ctx))],
    projections=lambda ctx: [AccountDeletions(_application(ctx), ctx.settings.topic("identity"))],
    key_tables=[AUTHOR_KEYS],
)

COMMANDS: dict[str, Callable[[list[str]], int]] = {"serve": lambda argv: serve(SPEC)}
