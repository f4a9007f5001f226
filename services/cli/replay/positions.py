"""Where a replay starts and ends in each partition: the beginning, an offset or a time,
up to the high watermark seen when it started."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition

from kith.cli.replay.errors import ReplayError
from kith.common.kafka import consumer_config

BROKER_TIMEOUT_S = 15.0
TP = tuple[str, int]


@dataclass(frozen=True)
class StartAt:
    """Where each partition's export starts: its beginning, an offset, or a time."""

    kind: str = "beginning"  # "beginning" | "offset" | "time"
    value: int = 0  # the offset, or milliseconds since the epoch

    @classmethod
    def parse(cls, offset: int | None, since: str | None) -> StartAt:
        if offset is not None and since is not None:
            raise ReplayError("give --from-offset or --since, not both")
        if offset is not None:
            if offset < 0:
                raise ReplayError("--from-offset must be at least 0")
            return cls("offset", offset)
        if since is not None:
            try:
                moment = datetime.fromisoformat(since)
            except ValueError:
                raise ReplayError(f"--since must be an ISO-8601 time, got {since!r}") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return cls("time", int(moment.timestamp() * 1000))
        return cls()


def partition_ranges(consumer: Consumer, topics: Sequence[str], start: StartAt
                     ) -> dict[TP, tuple[int, int]]:
    """``[first, end)`` offsets to export per partition, the end fixed at the current high mark."""
    ranges: dict[TP, tuple[int, int]] = {}
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=BROKER_TIMEOUT_S).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise ReplayError(f"topic {topic!r} does not exist")
        for partition in sorted(meta.partitions):
            tp = TopicPartition(topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=BROKER_TIMEOUT_S)
            if start.kind == "offset":
                first = min(max(low, start.value), high)
            elif start.kind == "time":
                tp.offset = start.value
                found = consumer.offsets_for_times([tp], timeout=BROKER_TIMEOUT_S)[0].offset
                first = high if found < 0 else max(low, found)
            else:
                first = low
            ranges[(topic, partition)] = (first, high)
    return ranges


def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TP, int]:
    """The current high watermark of every partition of ``topics``."""
    consumer = Consumer(consumer_config(bootstrap, f"replay.probe.{uuid.uuid4().hex}"))
    try:
        return {tp: end for tp, (_, end)
                in partition_ranges(consumer, topics, StartAt()).items()}
    finally:
        consumer.close()
