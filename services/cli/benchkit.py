"""Shared scaffolding for ``kith bench …``: real infrastructure and one JSON line out."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kith.common.config import DATABASES, SERVICES, Settings
from kith.common.db import migrate_service
from kith.common.infra.embedded import servers
from kith.common.infra.kafka import delete_topics, ensure_topics
from kith.common.infra.postgres import drop_database, ensure_database

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
    else fresh embedded servers in a temporary directory; fresh databases and topics,
    dropped afterwards."""
    with servers(REPO / ".kith" / "kafka" / "lib", os.environ.get("KITH_PG_DSN"),
                 os.environ.get("KITH_KAFKA_BOOTSTRAP"), durable=durable, kafka_heap="1g",
                 prefix="kith-bench-") as found:
        prefix = f"bench{int(time.time())}"
        settings = Settings(pg_dsn=found.admin_dsn, kafka_bootstrap=found.bootstrap,
                            db_prefix=prefix, topic_prefix=f"{prefix}.",
                            topic_partitions=partitions, log_format="text",
                            log_level="WARNING")
        for name in DATABASES:
            ensure_database(found.admin_dsn, f"{prefix}_{name}")
            migrate_service(settings.database_url(name), "kith.common")
        topics = [settings.topic(s) for s in SERVICES]
        ensure_topics(found.bootstrap, topics, partitions)
        try:
            yield BenchInfra(found.admin_dsn, found.bootstrap, settings)
        finally:
            for name in DATABASES:
                drop_database(found.admin_dsn, f"{prefix}_{name}")
            delete_topics(found.bootstrap, topics)


def emit(name: str, result: dict[str, Any]) -> None:
    """Print the machine-readable summary: one JSON object on one line of stdout."""
    print(json.dumps({"bench": name, **result}, sort_keys=False), flush=True)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
