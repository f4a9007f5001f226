"""Where a replay starts and ends in each partition: the beginning, an offset or a time,
up to the high watermark seen when it started."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
        """From the command line's ``--from-offset`` and ``--since`` (see :func:`parse_time`)."""
        if offset is not None and since is not None:
            raise ReplayError("give --from-offset or --since, not both")
        if offset is not None:
            if offset < 0:
                raise ReplayError("--from-offset must be at least 0")
            return cls("offset", offset)
        if since is not None:
            return cls("time", parse_time(since, "--since"))
        return cls()


def parse_time(value: str, flag: str, now: datetime | None = None) -> int:
    """Milliseconds since the epoch of an ISO-8601 time (UTC if no zone), or of ``today`` /
    ``yesterday`` (that day's UTC midnight: what a nightly export job passes)."""
    if value in ("today", "yesterday"):
        midnight = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0,
                                                      microsecond=0)
        if value == "yesterday":
            midnight -= timedelta(days=1)
        return int(midnight.timestamp() * 1000)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReplayError(f"{flag} must be an ISO-8601 time, today or yesterday; "
                          f"got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def partition_ranges(consumer: Consumer, topics: Sequence[str], start: StartAt,
                     until_ms: int | None = None) -> dict[TP, tuple[int, int]]:
    """``[first, end)`` offsets to export per partition: the end is the current high mark, or
    with ``until_ms`` the first record stamped at or after that time."""
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
            end = high
            if until_ms is not None:
                found = consumer.offsets_for_times([TopicPartition(topic, partition, until_ms)],
                                                   timeout=BROKER_TIMEOUT_S)[0].offset
                end = high if found < 0 else min(high, found)
            ranges[(topic, partition)] = (min(first, end), end)
    return ranges


def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TP, int]:
    """The current high watermark of every partition of ``topics``."""
    consumer = Consumer(consumer_config(bootstrap, f"replay.probe.{uuid.uuid4().hex}"))
    try:
        return {tp: end for tp, (_, end)
                in partition_ranges(consumer, topics, StartAt()).items()}
    finally:
        consumer.close()
