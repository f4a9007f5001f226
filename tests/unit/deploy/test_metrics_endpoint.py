"""The per-process metrics endpoint and the gRPC latency hook (a real in-process gRPC server)."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kith.common import metrics
from kith.common.rpc import start_server
from kith_dev.infra.processes import free_port

CHECK = "/grpc.health.v1.Health/Check"


def sample(name: str, labels: dict[str, str]) -> float:
    value = metrics.GRPC_SERVER_SECONDS.collect()[0]
    return next((s.value for s in value.samples if s.name == name and s.labels == labels), 0.0)


@pytest.mark.parametrize(("raw", "port"), [("", 0), ("0", 0), ("9100", 9100)])
def test_the_metrics_port_comes_from_kith_metrics_port(raw: str, port: int) -> None:
    assert metrics.metrics_port({"KITH_METRICS_PORT": raw}) == port
    assert metrics.metrics_port({}) == 0


@pytest.mark.parametrize("raw", ["x", "-1", "70000"])
def test_a_malformed_metrics_port_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="KITH_METRICS_PORT"):
        metrics.metrics_port({"KITH_METRICS_PORT": raw})


def test_grpc_calls_are_timed_by_method_and_status_and_served_over_http() -> None:
    server = start_server("127.0.0.1:0", [], [])
    labels = {"method": CHECK, "code": "OK"}
    before = sample("kith_grpc_server_handling_seconds_count", labels)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(3):
                stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    finally:
        server.stop(0)
    assert sample("kith_grpc_server_handling_seconds_count", labels) == before + 3

    assert metrics.start_metrics_server(0) is False
    port = free_port()
    assert metrics.start_metrics_server(port, addr="127.0.0.1") is True
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert f'kith_grpc_server_handling_seconds_count{{code="OK",method="{CHECK}"}}' in body
