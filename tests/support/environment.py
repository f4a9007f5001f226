"""Isolated databases, topics and in-process services on the session's real servers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kith.common.config import Settings
from kith.common.service import RunningService, ServiceSpec, start_service
from kith_dev.infra.embedded import provisioned

REPO = Path(__file__).resolve().parents[2]
# Cheap password hashing: the production argon2id cost would dominate the suite.
FAST_ARGON2 = {"KITH_ARGON2_TIME_COST": "1", "KITH_ARGON2_MEMORY_KIB": "8",
               "KITH_ARGON2_PARALLELISM": "1"}


@dataclass(frozen=True)
class Infra:
    admin_dsn: str
    bootstrap: str


@contextmanager
def isolated_settings(infra: Infra, prefix: str, partitions: int,
                      **overrides: Any) -> Iterator[Settings]:
    """Settings whose databases (``<prefix>_<service>``, event store migrated) and topics
    (``<prefix>.<service>.events.v1``) are fresh, and dropped afterwards."""
    settings = Settings(home=REPO / ".kith", pg_dsn=infra.admin_dsn,
                        kafka_bootstrap=infra.bootstrap, topic_prefix=f"{prefix}.",
                        db_prefix=prefix, topic_partitions=partitions, log_format="text",
                        extra=FAST_ARGON2, **overrides)
    with provisioned(settings):
        yield settings


class ServiceStack:
    """Real gRPC services started in-process on free ports; each later one knows the earlier."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.running: dict[str, RunningService] = {}

    def start(self, spec: ServiceSpec) -> RunningService:
        running = start_service(spec, self.settings, address="127.0.0.1:0")
        self.running[spec.name] = running
        self.settings = dataclasses.replace(
            self.settings,
            grpc_addrs={**self.settings.grpc_addrs, spec.name: running.address},
        )
        return running

    def stop(self) -> None:
        for running in reversed(list(self.running.values())):
            running.stop()
        self.running.clear()
