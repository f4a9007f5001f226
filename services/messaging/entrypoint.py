"""``kith messaging serve``: the messaging gRPC service, its outbox relay, its inbox and its
reaction to account deletions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from kith.common.projection import Projection
from kith.common.rpc import channel
from kith.common.service import ServiceContext, ServiceSpec, serve
from kith.messaging.account_deletions import AccountDeletions
from kith.messaging.application import MessagingApplication
from kith.messaging.clients import GraphClient
from kith.messaging.grpc_api import SERVICE_NAME, MessagingServicer
from kith.messaging.keys import CONVERSATION_KEYS, SENDER_KEYS
from kith.messaging.projections import InboxProjection
from kith.protos import messaging_pb2_grpc


def _application(ctx: ServiceContext) -> MessagingApplication:
    graph = GraphClient(channel(ctx.settings.grpc_addr("graph")))
    return MessagingApplication(ctx.store, graph, ctx.settings.conversation_max_members)


def _register(ctx: ServiceContext) -> Sequence[Callable[[grpc.Server], None]]:
    servicer = MessagingServicer(_application(ctx))
    return [lambda server: messaging_pb2_grpc.add_MessagingServiceServicer_to_server(
        servicer, server)]


def _projections(ctx: ServiceContext) -> Sequence[Projection]:
    return [InboxProjection(ctx.settings.topic("messaging")),
            AccountDeletions(_application(ctx), ctx.settings.topic("identity"))]


SPEC = ServiceSpec(
    name="messaging",
    package="kith.messaging",
    grpc_services=[SERVICE_NAME],
    register=_register,
    projections=_projections,
    key_tables=[CONVERSATION_KEYS, SENDER_KEYS],
)

COMMANDS: dict[str, Callable[[list[str]], int]] = {"serve": lambda argv: serve(SPEC)}
