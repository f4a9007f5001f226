"""``kith messaging serve``: the messaging gRPC service, its outbox relay and its inbox."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from kith.common.projection import Projection
from kith.common.service import ServiceContext, ServiceSpec, serve
from kith.messaging.application import MessagingApp
from kith.messaging.graph_client import GrpcGraph
from kith.messaging.grpc_api import SERVICE_NAME, MessagingServicer
from kith.messaging.projections import InboxProjection
from kith.protos import messaging_pb2_grpc


def _register(ctx: ServiceContext) -> Sequence[Callable[[grpc.Server], None]]:
    app = MessagingApp(ctx.store, GrpcGraph(ctx.settings.grpc_addr("graph")),
                       ctx.settings.conversation_max_members)
    servicer = MessagingServicer(app)
    return [lambda server: messaging_pb2_grpc.add_MessagingServiceServicer_to_server(
        servicer, server)]


def _projections(ctx: ServiceContext) -> Sequence[Projection]:
    return [InboxProjection(ctx.settings.topic("messaging"))]


SPEC = ServiceSpec(
    name="messaging",
    package="kith.messaging",
    grpc_services=[SERVICE_NAME],
    register=_register,
    projections=_projections,
)

COMMANDS: dict[str, Callable[[list[str]], int]] = {"serve": lambda argv: serve(SPEC)}
