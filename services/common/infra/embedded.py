"""PostgreSQL + Kafka for a test session or a benchmark, embedded unless given."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kith.common.infra.kafka import EmbeddedKafka
from kith.common.infra.postgres import EmbeddedPostgres
from kith.common.infra.processes import free_port


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
