"""A real identity service (gRPC server, event store, outbox relay) for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kith.identity.entrypoint import SPEC
from kith.protos import identity_pb2_grpc
from tests.integration.identity.identity_helpers import IdentityClient
from tests.support.rpc import channel


@pytest.fixture
def identity(stack) -> Iterator[IdentityClient]:
    running = stack.start(SPEC)
    with channel(running.address, deadline_s=15) as chan:
        yield IdentityClient(identity_pb2_grpc.IdentityServiceStub(chan), running,
                             stack.settings)
