"""``kith infra``: prepare an external PostgreSQL/Kafka (databases, migrations, topics)."""

from __future__ import annotations

import importlib.util

from kith.common.config import DATABASES, SERVICES, Settings
from kith.common.db import migrate_service
from kith.common.infra.kafka import ensure_topics, wait_for_topics
from kith.common.infra.postgres import ensure_database


def service_available(name: str) -> bool:
    return importlib.util.find_spec(f"kith.{name}.entrypoint") is not None


def prepare(settings: Settings, admin_dsn: str, bootstrap: str,
            wait_for_topics_s: float | None = None) -> None:
    """Create each service's database (and migrate it) and every event topic (with the broker's
    default replication), or, given ``wait_for_topics_s``, wait that long for topics declared
    elsewhere (Strimzi KafkaTopics) instead of racing their operator."""
    for service in DATABASES:
        ensure_database(admin_dsn, f"{settings.db_prefix}_{service}")
        if service_available(service):
            migrate_service(settings.database_url(service), f"kith.{service}")
    topics = [settings.topic(s) for s in SERVICES]
    if wait_for_topics_s is None:
        ensure_topics(bootstrap, topics, settings.topic_partitions)
    else:
        wait_for_topics(bootstrap, topics, wait_for_topics_s)


def main(argv: list[str]) -> int:
    settings = Settings.from_env()
    if argv not in (["prepare"], ["prepare", "--wait-for-topics"]):
        print("usage: kith infra prepare [--wait-for-topics]   "
              "(needs KITH_PG_DSN and KITH_KAFKA_BOOTSTRAP)")
        return 2
    prepare(settings, settings.pg_dsn or "", settings.require_kafka(),
            600.0 if "--wait-for-topics" in argv else None)
    print("databases, migrations and topics are ready")
    return 0
