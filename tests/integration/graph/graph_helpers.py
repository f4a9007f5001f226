"""Helpers of the graph integration tests: errors of refused calls, reading topics, polling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer

from kith.common.codec import default_codec
from kith.common.config import Settings
from kith.common.kafka import EventEnvelope, consumer_config
from kith.common.service import RunningService
from kith.protos import graph_pb2_grpc


@dataclass
class Graph:
    stub: graph_pb2_grpc.GraphServiceStub
    running: RunningService
    settings: Settings


def new_user() -> str:
    return str(uuid.uuid4())




@dataclass(frozen=True)
class Published:
    key: str
    type: str
    version: int
    data: dict[str, Any]


def read_topic(settings: Settings, service: str, until: Callable[[list[Published]], bool],
               timeout_s: float = 20.0) -> list[Published]:
    """Events on ``<service>.events.v1`` from the start, read until ``until`` holds."""
    consumer = Consumer(consumer_config(settings.require_kafka(), f"test-{uuid.uuid4()}"))
    consumer.subscribe([settings.topic(service)])
    codec = default_codec()
    seen: list[Published] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(seen):
            assert time.monotonic() < deadline, f"timed out; saw {[p.type for p in seen]}"
            for msg in consumer.consume(100, 0.2):
                if msg.error():
                    continue
                env = EventEnvelope.from_message(msg)
                event_type, data = codec.decode(env.payload)
                assert event_type == env.type
                seen.append(Published(str(env.stream_id), event_type, env.version, data))
    finally:
        consumer.close()
    return seen

