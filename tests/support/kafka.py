"""Reading a whole topic back, for assertions."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from kith.common.kafka import EventEnvelope


def read_topic(bootstrap: str, topic: str, expect_at_least: int,
               timeout_s: float = 30.0) -> list[EventEnvelope]:
    """Every record of ``topic`` from the beginning, in partition order per partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "log_level": 3})
    consumer.subscribe([topic])
    records: list[EventEnvelope] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    records.append(EventEnvelope.from_message(msg))
            if len(records) >= expect_at_least:
                # Pick up stragglers (duplicates) already in the log, then stop.
                for msg in consumer.consume(1000, 1.0):
                    if msg.error() is None:
                        records.append(EventEnvelope.from_message(msg))
                break
    finally:
        consumer.close()
    return records


def count_records(bootstrap: str, topic: str, timeout_s: float = 10.0) -> int:
    """How many records ``topic`` holds (all partitions), duplicates included."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4()}",
                         "log_level": 3})
    try:
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                       timeout=timeout_s)
            total += high - low
        return total
    finally:
        consumer.close()
