"""``kith infra``: prepare an external PostgreSQL/Kafka (databases, migrations, topics)."""

from __future__ import annotations

import importlib.util

from kith.common.config import DATABASES, SERVICES, Settings
from kith.common.db import migrate_service
from kith.common.infra.kafka import ensure_topics
from kith.common.infra.postgres import ensure_database


def service_available(name: str) -> bool:
    return importlib.util.find_spec(f"kith.{name}.entrypoint") is not None


def prepare(settings: Settings, admin_dsn: str, bootstrap: str) -> None:
    """Create each service's database (and migrate it) and every event topic."""
    for service in DATABASES:
        ensure_database(admin_dsn, f"{settings.db_prefix}_{service}")
        if service_available(service):
            migrate_service(settings.database_url(service), f"kith.{service}")
    ensure_topics(bootstrap, [settings.topic(s) for s in SERVICES], settings.topic_partitions)


def main(argv: list[str]) -> int:
    settings = Settings.from_env()
    if argv != ["prepare"]:
        print("usage: kith infra prepare   (needs KITH_PG_DSN and KITH_KAFKA_BOOTSTRAP)")
        return 2
    prepare(settings, settings.pg_dsn or "", settings.require_kafka())
    print("databases, migrations and topics are ready")
    return 0
