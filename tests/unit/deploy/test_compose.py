"""docker-compose.yml, validated offline (no Docker engine here): schema, topology, start order."""

from __future__ import annotations

import subprocess
import sys
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
import yaml

from kith.common.config import DEFAULT_GRPC_PORTS, SERVICES

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"
KITH = [*SERVICES, "feed-fanout", "gateway", "gateway-stream"]


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: cond["condition"] for name, cond in service.get("depends_on", {}).items()}


def test_the_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run([str(checker), "--builtin-schema", "vendor.compose-spec",
                             str(COMPOSE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_the_whole_topology_on_official_kafka_and_postgres_images(
    services: dict[str, Any],
) -> None:
    assert set(services) == {"postgres", "kafka", "init", *KITH}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:")
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from init
    assert services["init"]["command"] == ["infra", "prepare"]
    for name in SERVICES:
        assert services[name]["command"] == [name, "serve"]
    assert services["feed-fanout"]["command"] == ["feed", "fanout"]
    assert services["gateway"]["command"] == ["gateway", "serve"]
    assert services["gateway"]["ports"] == ["127.0.0.1:8082:8080"]  # direct, local only
    # The public origin: the stream server, passing everything but GET /v1/stream on.
    assert services["gateway-stream"]["command"] == ["gateway", "stream"]
    assert services["gateway-stream"]["ports"] == ["8080:8081"]
    env = services["gateway-stream"]["environment"]
    assert env["KITH_GATEWAY_STREAM_UPSTREAM"] == "http://gateway:8080"
    assert depends(services["gateway-stream"])["gateway"] == "service_healthy"


def test_every_long_running_process_has_a_health_check_on_its_own_port(
    services: dict[str, Any],
) -> None:
    for name in ("postgres", "kafka", *SERVICES, "gateway", "gateway-stream"):
        assert services[name]["healthcheck"]["test"], name
    for name in SERVICES:
        port = DEFAULT_GRPC_PORTS[name]
        env = services[name]["environment"]
        assert env[f"KITH_{name.upper()}_ADDR"] == f"0.0.0.0:{port}"
        assert services[name]["healthcheck"]["test"][-1] == f"127.0.0.1:{port}"


def test_processes_start_in_dependency_order_once_what_they_need_is_healthy(
    services: dict[str, Any],
) -> None:
    assert depends(services["init"]) == {"postgres": "service_healthy",
                                         "kafka": "service_healthy"}
    for name in KITH:
        assert depends(services[name])["init"] == "service_completed_successfully"
        for other, condition in depends(services[name]).items():
            if other != "init":
                assert condition == "service_healthy" and "healthcheck" in services[other]
    assert {s: "service_healthy" for s in SERVICES}.items() <= depends(
        services["gateway"]).items()
    order = list(TopologicalSorter({n: set(depends(s)) for n, s in services.items()})
                 .static_order())  # raises on a cycle
    assert order.index("init") < min(order.index(n) for n in KITH)


def test_every_process_gets_the_same_configuration_and_no_hard_coded_secret(
    services: dict[str, Any],
) -> None:
    shared = services["identity"]["environment"]
    for name in ("init", *KITH):
        env = services[name]["environment"]
        assert env["KITH_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert "@postgres:5432/" in env["KITH_PG_DSN"]
        assert env["KITH_JWT_SECRET"].startswith("${KITH_JWT_SECRET")
        assert env["KITH_METRICS_PORT"] == "9100"
        for svc, port in DEFAULT_GRPC_PORTS.items():
            if svc != name:
                assert env[f"KITH_{svc.upper()}_ADDR"] == f"{svc}:{port}"
        assert {k: v for k, v in env.items() if not k.endswith("_ADDR")} == {
            k: v for k, v in shared.items() if not k.endswith("_ADDR")}
    assert "${POSTGRES_PASSWORD" in shared["KITH_PG_DSN"]


def test_kith_containers_run_read_only_without_capabilities(services: dict[str, Any]) -> None:
    for name in KITH:
        assert services[name]["read_only"] is True
        assert services[name]["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in services[name]["security_opt"]
        assert services[name]["tmpfs"] == ["/tmp"]
