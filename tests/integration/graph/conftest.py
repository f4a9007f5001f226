"""A real graph service (gRPC server, event store, relay, projection) for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kith.graph.entrypoint import SPEC
from kith.protos import graph_pb2_grpc
from tests.integration.graph.graph_helpers import Graph
from tests.support.rpc import channel


@pytest.fixture
def graph(stack) -> Iterator[Graph]:
    running = stack.start(SPEC)
    with channel(running.address, deadline_s=15) as chan:
        yield Graph(graph_pb2_grpc.GraphServiceStub(chan), running, stack.settings)
