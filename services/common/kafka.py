"""Kafka client configuration and the headers every Kith event carries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

# librdkafka security settings of this process (SASL/SCRAM, TLS), set once at the edge by
# :func:`configure_security` and merged into every client configuration below.
_SECURITY: dict[str, str] = {}
SECURITY_VARS = {
    "KITH_KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "KITH_KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "KITH_KAFKA_SASL_USERNAME": "sasl.username",
    "KITH_KAFKA_SASL_PASSWORD": "sasl.password",
    "KITH_KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
}


def configure_security(env: Mapping[str, str]) -> None:
    """Read the ``KITH_KAFKA_SECURITY_PROTOCOL`` … variables (``Settings.extra``) once, at start."""
    _SECURITY.clear()
    _SECURITY.update({opt: env[var] for var, opt in SECURITY_VARS.items() if env.get(var)})


def client_security() -> dict[str, str]:
    """The configured security settings, for clients built without the helpers below."""
    return dict(_SECURITY)


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """An idempotent producer: no duplicates or reordering within a partition on retries."""
    return {
        **_SECURITY,
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
        # The same key → partition mapping as Java clients, so any tool agrees with us.
        "partitioner": "murmur2_random",
        "log_level": 4,
        **overrides,
    }


def consumer_config(bootstrap: str, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer whose offsets the application stores itself (in Postgres)."""
    return {
        **_SECURITY,
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        # How long the broker may hold a fetch that finds nothing new. Data arriving ends
        # the wait at once (fetch.min.bytes is 1), so this bounds only how often an idle
        # consumer asks: twice a second. Each idle fetch costs the broker and librdkafka CPU;
        # at 50/s per consumer that was most of an idle broker's CPU. What it delays is a
        # change of what is fetched (an assign, a seek after a hold) by up to this long.
        "fetch.wait.max.ms": 500,
        "session.timeout.ms": 10_000,  # a crashed member's partitions move on within 10 s
        "heartbeat.interval.ms": 2_000,
        "log_level": 4,
        **overrides,
    }


@dataclass(frozen=True)
class EventEnvelope:
    """A Kith event as read from Kafka: headers decoded, payload still Avro."""

    topic: str
    partition: int
    offset: int
    stream_id: uuid.UUID
    event_id: uuid.UUID
    type: str
    version: int
    position: int
    payload: bytes
    metadata: dict[str, Any]

    @classmethod
    def from_message(cls, msg: Message) -> EventEnvelope:
        headers = {k: v for k, v in (msg.headers() or [])}
        return cls(
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            stream_id=uuid.UUID(msg.key().decode()),
            event_id=uuid.UUID(headers["event_id"].decode()),
            type=headers["event_type"].decode(),
            version=int(headers["stream_version"]),
            position=int(headers["position"]),
            payload=msg.value(),
            metadata=json.loads(headers.get("metadata") or b"{}"),
        )


def event_headers(event_type: str, event_id: uuid.UUID, version: int, position: int,
                  metadata: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [
        ("event_type", event_type.encode()),
        ("event_id", str(event_id).encode()),
        ("stream_version", str(version).encode()),
        ("position", str(position).encode()),
        ("metadata", json.dumps(metadata).encode()),
    ]
