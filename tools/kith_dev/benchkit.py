"""Shared scaffolding for ``kith bench …``: real infrastructure, service processes and one
JSON line out."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kith.common.config import SERVICES, Settings
from kith_dev.infra.embedded import provisioned, servers
from kith_dev.infra.processes import InfraError, free_port, log_tail, stop_process

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchInfra:
    admin_dsn: str
    bootstrap: str
    settings: Settings
    embedded: bool  # at least one of PostgreSQL/Kafka was started for this run


@contextmanager
def bench_infra(partitions: int = 12, durable: bool = True,
                keep: bool = False) -> Iterator[BenchInfra]:
    """PostgreSQL + Kafka for a benchmark: ``KITH_PG_DSN``/``KITH_KAFKA_BOOTSTRAP`` if set,
    else fresh embedded servers in a temporary directory; fresh databases and topics,
    dropped afterwards unless ``keep``. ``settings`` are the environment's, pointed at them."""
    env = Settings.from_env()
    with servers(REPO / ".kith" / "kafka" / "lib", env.pg_dsn, env.kafka_bootstrap,
                 durable=durable, kafka_heap="1g", prefix="kith-bench-") as found:
        prefix = f"bench{int(time.time())}p{os.getpid()}"  # unique among concurrent runs
        settings = dataclasses.replace(
            env, pg_dsn=found.admin_dsn, kafka_bootstrap=found.bootstrap, db_prefix=prefix,
            topic_prefix=f"{prefix}.", topic_partitions=partitions, log_format="text",
            log_level="WARNING")
        with provisioned(settings, keep=keep):
            yield BenchInfra(found.admin_dsn, found.bootstrap, settings,
                             embedded=not (env.pg_dsn and env.kafka_bootstrap))


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``kith …`` child process on the bench's servers, databases and
    topics (quiet logging), plus ``extra``."""
    return {**os.environ, "KITH_PG_DSN": settings.pg_dsn or "",
            "KITH_KAFKA_BOOTSTRAP": settings.require_kafka(),
            "KITH_DB_PREFIX": settings.db_prefix, "KITH_TOPIC_PREFIX": settings.topic_prefix,
            "KITH_TOPIC_PARTITIONS": str(settings.topic_partitions), "KITH_LOG_LEVEL": "WARNING",
            **extra}


@dataclass
class Children:
    """Service processes of a benchmark and where they listen."""

    addrs: dict[str, str]  # the gRPC address of every service, started or not
    gateway_url: str
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)


@contextmanager
def spawn_services(settings: Settings, commands: Sequence[tuple[str, str]], logdir: Path,
                   env: Mapping[str, str] | None = None) -> Iterator[Children]:
    """Run ``kith <service> <command>`` children, in order, on the bench's infrastructure,
    each ``serve`` waited for until healthy (gRPC health; ``/healthz`` for the gateway) before
    the next starts; stopped in reverse order afterwards. Output goes to
    ``logdir/<service>-<command>.log``; ``env`` adds variables (e.g. gateway knobs)."""
    addrs = {svc: f"127.0.0.1:{free_port()}" for svc in SERVICES}
    port = free_port()
    full_env = child_env(settings, KITH_GATEWAY_PORT=str(port), **{
        f"KITH_{svc.upper()}_ADDR": addr for svc, addr in addrs.items()}) | dict(env or {})
    children = Children(addrs, f"http://127.0.0.1:{port}")
    try:
        for svc, command in commands:
            log = logdir / f"{svc}-{command}.log"
            with open(log, "ab") as out:
                proc = subprocess.Popen([sys.executable, "-m", "kith.cli", svc, command],
                                        env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            children.procs.append((f"{svc}-{command}", proc))
            if command == "serve" and svc == "gateway":
                _wait_http(children.gateway_url + "/healthz", log)
            elif command == "serve":
                _wait_grpc(addrs[svc], log)
        yield children
    finally:
        for _, proc in reversed(children.procs):
            stop_process(proc, timeout=20)


def _wait_grpc(address: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as chan:
        stub = health_pb2_grpc.HealthStub(chan)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == (
                        health_pb2.HealthCheckResponse.SERVING):
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise InfraError(f"no healthy service at {address}:\n{log_tail(log)}")


def _wait_http(url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise InfraError(f"gateway did not start:\n{log_tail(log)}")


def emit(name: str, result: dict[str, Any]) -> None:
    """Print the machine-readable summary: one JSON object on one line of stdout."""
    print(json.dumps({"bench": name, **result}, sort_keys=False), flush=True)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
