"""PostgreSQL + Kafka for a test session or a benchmark, embedded unless given."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kith.common.config import DATABASES, SERVICES, Settings
from kith.common.db import migrate_service
from kith.common.infra.kafka import delete_topics, ensure_topics
from kith.common.infra.postgres import drop_database, ensure_database
from kith_dev.infra.kafka import EmbeddedKafka
from kith_dev.infra.postgres import EmbeddedPostgres
from kith_dev.infra.processes import free_port


@dataclass(frozen=True)
class Servers:
    admin_dsn: str
    bootstrap: str


@contextmanager
def servers(kafka_lib: Path, pg_dsn: str | None = None, bootstrap: str | None = None,
            durable: bool = False, kafka_heap: str = "768m", prefix: str = "kith-"
            ) -> Iterator[Servers]:
    """Yield server addresses: ``pg_dsn``/``bootstrap`` when given, else fresh embedded
    servers on free ports in a temporary directory, stopped and removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    postgres = kafka = None
    try:
        if not pg_dsn:
            postgres = EmbeddedPostgres(workdir / "postgres", free_port(), durable=durable)
            pg_dsn = postgres.start()
        if not bootstrap:
            kafka = EmbeddedKafka(workdir / "kafka", free_port(), free_port(),
                                  lib_dir=kafka_lib, heap=kafka_heap)
            bootstrap = kafka.start()
        yield Servers(pg_dsn, bootstrap)
    finally:
        if kafka is not None:
            kafka.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def provisioned(settings: Settings, keep: bool = False) -> Iterator[Settings]:
    """Create the databases (event store migrated) and topics that ``settings`` name —
    ``<db_prefix>_<service>``, ``<topic_prefix><service>.events.v1`` — and drop them
    afterwards unless ``keep``: an isolated Kith on shared servers (tests, benchmarks)."""
    admin_dsn, bootstrap = settings.pg_dsn or "", settings.require_kafka()
    for name in DATABASES:
        ensure_database(admin_dsn, f"{settings.db_prefix}_{name}")
        migrate_service(settings.database_url(name), "kith.common")
    topics = [settings.topic(s) for s in SERVICES]
    ensure_topics(bootstrap, topics, settings.topic_partitions)
    try:
        yield settings
    finally:
        if not keep:
            for name in DATABASES:
                drop_database(admin_dsn, f"{settings.db_prefix}_{name}")
            delete_topics(bootstrap, topics)
