"""Kith processes (``python -m kith.cli …``) on a test's isolated databases and topics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kith.common.config import DEFAULT_GRPC_PORTS, Settings
from kith_dev.infra.processes import free_port
from tests.support.environment import FAST_ARGON2

REPO = Path(__file__).resolve().parents[2]


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a ``kith`` process needs to run on ``settings``' databases and topics,
    each gRPC service on a fresh port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITH_")}
    env.update(FAST_ARGON2)
    env.update({
        "KITH_PG_DSN": settings.pg_dsn or "", "KITH_DB_PREFIX": settings.db_prefix,
        "KITH_TOPIC_PREFIX": settings.topic_prefix,
        "KITH_KAFKA_BOOTSTRAP": settings.require_kafka(), "KITH_LOG_FORMAT": "text",
        "KITH_TOPIC_PARTITIONS": str(settings.topic_partitions), "PYTHONPATH": str(REPO),
    })
    for name in DEFAULT_GRPC_PORTS:
        env[f"KITH_{name.upper()}_ADDR"] = f"127.0.0.1:{free_port()}"
    env.update(extra)
    return env


def start(env: dict[str, str], *command: str, log: Path | None = None
          ) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child's
    return subprocess.Popen([sys.executable, "-m", "kith.cli", *command], env=env, cwd=REPO,
                            stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(address: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise AssertionError(f"no healthy service at {address}")
