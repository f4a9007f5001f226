"""A new channel never inherits the failures of an older channel's dead server.

gRPC shares one connection per address across a process's channels by default. A
server that stopped leaves that connection backing off after "Connection refused"; a
new server that gets the same port (ports are reused) was then unreachable for the
first calls of every new channel to it — the rare UNAVAILABLE of a test's first call.
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kith.common import rpc


def _check(channel: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                     timeout=5).status


def test_a_new_server_on_a_dead_servers_port_answers_a_new_channels_first_call() -> None:
    first = rpc.start_server("127.0.0.1:0", [], [])
    address = f"127.0.0.1:{first.port}"
    old = rpc.channel(address)
    assert _check(old) == health_pb2.HealthCheckResponse.SERVING
    first.stop(0)
    with pytest.raises(grpc.RpcError) as gone:
        _check(old)
    assert gone.value.code() == grpc.StatusCode.UNAVAILABLE  # the old channel now backs off

    second = rpc.start_server(address, [], [])  # the same port, as a reused one would be
    try:
        assert _check(rpc.channel(address)) == health_pb2.HealthCheckResponse.SERVING
    finally:
        second.stop(0)
        old.close()
