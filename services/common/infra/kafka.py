"""Topic administration on a real Kafka cluster (``kith infra prepare``, tests, benchmarks)."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from kith.common.infra import InfraError
from kith.common.kafka import client_security


def ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    """Create each topic with infinite retention unless it exists already; its replication
    factor is the broker's ``default.replication.factor`` (never a hard-coded 1)."""
    admin = AdminClient({**client_security(), "bootstrap.servers": bootstrap, "log_level": 4})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(
            t,
            num_partitions=partitions,
            replication_factor=-1,  # the broker's default.replication.factor
            config={"retention.ms": "-1", "retention.bytes": "-1"},
        )
        for t in topics
        if t not in existing
    ]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted, request_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise InfraError(f"could not create topic {topic}: {exc}") from exc


def wait_for_topics(bootstrap: str, topics: list[str], timeout_s: float) -> None:
    """Wait until every topic exists (created by an operator, e.g. Strimzi's KafkaTopics)."""
    admin = AdminClient({**client_security(), "bootstrap.servers": bootstrap, "log_level": 4})
    deadline = time.monotonic() + timeout_s
    while True:
        missing = sorted(set(topics) - set(admin.list_topics(timeout=10).topics))
        if not missing:
            return
        if time.monotonic() > deadline:
            raise InfraError(f"topics never appeared within {timeout_s:.0f} s: {missing}")
        time.sleep(2)


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """Delete topics (e.g. a benchmark's own); missing ones are ignored."""
    admin = AdminClient({**client_security(), "bootstrap.servers": bootstrap, "log_level": 4})
    for future in admin.delete_topics(topics, request_timeout=30).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
                raise
