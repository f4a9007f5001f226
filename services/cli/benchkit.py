"""Shared scaffolding for ``kith bench …``: real infrastructure and one JSON line out."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kith.common.config import DATABASES, SERVICES, Settings
from kith.common.db import migrate_service
from kith.common.infra.kafka import EmbeddedKafka, ensure_topics
from kith.common.infra.postgres import EmbeddedPostgres, ensure_database
from kith.common.infra.processes import free_port

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO.parent / "shared" / "datasets" / "social-graphs" / "socfb-Reed98.edges"


@dataclass(frozen=True)
class BenchInfra:
    admin_dsn: str
    bootstrap: str
    settings: Settings


@contextmanager
def bench_infra(partitions: int = 12, durable: bool = True) -> Iterator[BenchInfra]:
    """PostgreSQL + Kafka for a benchmark: ``KITH_PG_DSN``/``KITH_KAFKA_BOOTSTRAP`` if set,
    else fresh embedded servers in a temporary directory; fresh databases and topics."""
    env = os.environ
    workdir = Path(tempfile.mkdtemp(prefix="kith-bench-"))
    postgres = kafka = None
    try:
        dsn = env.get("KITH_PG_DSN")
        if not dsn:
            postgres = EmbeddedPostgres(workdir / "postgres", free_port(), durable=durable)
            dsn = postgres.start()
        bootstrap = env.get("KITH_KAFKA_BOOTSTRAP")
        if not bootstrap:
            kafka = EmbeddedKafka(workdir / "kafka", free_port(), free_port(),
                                  lib_dir=REPO / ".kith" / "kafka" / "lib", heap="1g")
            bootstrap = kafka.start()
        prefix = f"bench{int(time.time())}"
        settings = Settings(pg_dsn=dsn, kafka_bootstrap=bootstrap, db_prefix=prefix,
                            topic_prefix=f"{prefix}.", topic_partitions=partitions,
                            log_format="text", log_level="WARNING")
        for name in DATABASES:
            ensure_database(dsn, f"{prefix}_{name}")
            migrate_service(settings.database_url(name), "kith.common")
        ensure_topics(bootstrap, [settings.topic(s) for s in SERVICES], partitions)
        yield BenchInfra(dsn, bootstrap, settings)
    finally:
        if kafka is not None:
            kafka.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def emit(name: str, result: dict[str, Any]) -> None:
    """Print the machine-readable summary: one JSON object on one line of stdout."""
    print(json.dumps({"bench": name, **result}, sort_keys=False), flush=True)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
