"""Messaging over real gRPC: the graph service first (niches, blocks), then messaging."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from kith.graph.entrypoint import SPEC as GRAPH
from kith.messaging.entrypoint import SPEC as MESSAGING
from kith.protos import graph_pb2_grpc, messaging_pb2_grpc
from tests.integration.messaging.messaging_helpers import MAX_MEMBERS, World
from tests.support.rpc import channel


@pytest.fixture
def world(stack) -> Iterator[World]:
    stack.start(GRAPH)
    stack.settings = dataclasses.replace(stack.settings, conversation_max_members=MAX_MEMBERS)
    stack.start(MESSAGING)
    settings = stack.settings
    graph_channel = channel(settings.grpc_addr("graph"))
    messaging_channel = channel(settings.grpc_addr("messaging"), deadline_s=20)
    yield World(graph_pb2_grpc.GraphServiceStub(graph_channel),
                messaging_pb2_grpc.MessagingServiceStub(messaging_channel),
                settings)
    graph_channel.close()
    messaging_channel.close()
