"""``kith replay export``: topics → Avro and Parquet files, chunk by chunk, resumably.

The files (what DuckDB, pandas/fastavro/pyarrow and Spark read directly) are laid out
Hive-style, ``DIR/type=<event type>/day=<YYYY-MM-DD>/part-<chunk>.{avro,parquet}``: one
record per event with the envelope and the payload decoded with the newest schema of the
event type (see :mod:`kith.cli.replay.records`). The day is the Kafka record's timestamp
(UTC). Filters (:class:`ExportFilter`) keep event types, streams, and records stamped before
a time. The export is bounded: it stops at the end offsets seen when it started; it
resumes from its checkpoint (see :mod:`kith.cli.replay.checkpoint`); it holds each event
once (see :mod:`kith.cli.replay.dedupe`).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import fastavro
from confluent_kafka import Consumer, KafkaError, TopicPartition

from kith.cli.replay.checkpoint import CHECKPOINT, ExportState, discard_unfinished
from kith.cli.replay.dedupe import SeenEvents
from kith.cli.replay.errors import ReplayError
from kith.cli.replay.parquet import arrow_schema, write_parquet
from kith.cli.replay.positions import BROKER_TIMEOUT_S, TP, StartAt, partition_ranges
from kith.cli.replay.progress import Progress
from kith.cli.replay.records import export_record, export_schema, utc_day
from kith.common.codec import AvroCodec
from kith.common.kafka import EventEnvelope, consumer_config

FORMATS = ("avro", "parquet")


@dataclass(frozen=True)
class ExportFilter:
    """Which events an export keeps: event types (the full name, ``kith.post.PostPublished``,
    or the last part, ``PostPublished``), stream ids, and records stamped before ``until_ms``.
    Empty sets keep everything."""

    types: frozenset[str] = frozenset()
    streams: frozenset[str] = frozenset()
    until_ms: int | None = None

    def keeps_type(self, event_type: str) -> bool:
        return not self.types or bool({event_type, event_type.rpartition(".")[2]} & self.types)

    def to_json(self) -> dict[str, Any]:
        return {"types": sorted(self.types), "streams": sorted(self.streams),
                "until": self.until_ms}


@dataclass
class ExportResult:
    """What an export run did: events and files written, duplicates skipped, whether it
    resumed."""

    exported: int
    files: int
    resumed: bool
    seconds: float
    by_type: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0


class Exporter:
    """Exports topics into Avro container files, chunk by chunk, resumably."""

    def __init__(self, bootstrap: str, codec: AvroCodec, out: Path, chunk_size: int = 50_000,
                 progress_stream: TextIO | None = None,
                 formats: Sequence[str] = FORMATS) -> None:
        if chunk_size < 1:
            raise ReplayError("--chunk-size must be at least 1")
        if not formats or set(formats) - set(FORMATS):
            raise ReplayError(f"formats must be among {FORMATS}, got {list(formats)}")
        self.formats = tuple(f for f in FORMATS if f in formats)
        self.bootstrap = bootstrap
        self.codec = codec
        self.out = out
        self.chunk_size = chunk_size
        self.progress_stream = progress_stream
        self._schemas: dict[str, dict[str, Any]] = {}
        self._arrow: dict[str, Any] = {}

    def run(self, topics: Sequence[str], start: StartAt,
            stop: threading.Event | None = None, max_chunks: int | None = None,
            only: ExportFilter | None = None) -> ExportResult:
        """Export (or resume exporting) ``topics``, keeping what ``only`` selects; stop early
        on ``stop`` or after ``max_chunks`` chunks (the next run resumes)."""
        stop = stop or threading.Event()
        only = only or ExportFilter()
        self.out.mkdir(parents=True, exist_ok=True)
        job = {"topics": sorted(topics), "start": [start.kind, start.value],
               "filter": only.to_json(), "formats": list(self.formats)}
        consumer = Consumer(consumer_config(
            self.bootstrap, f"replay.export.{uuid.uuid4().hex}", **{"enable.partition.eof": True}))
        started = time.monotonic()
        files = duplicates = 0
        by_type: dict[str, int] = defaultdict(int)
        seen: SeenEvents | None = None
        try:
            state, resumed = self._load_or_start(consumer, job, topics, start, only)
            seen = SeenEvents(self.out)
            seen.forget_from(state.next_chunk)
            done = sum(o - state.ranges[tp][0] for tp, o in state.next_offsets.items())
            progress = Progress("export", done + state.remaining(), done, self.progress_stream)
            pending = {tp: (o, state.ranges[tp][1]) for tp, o in state.next_offsets.items()
                       if o < state.ranges[tp][1]}
            if pending:
                consumer.incremental_assign([TopicPartition(t, p, o)
                                             for (t, p), (o, _) in pending.items()])
            chunks = 0
            while pending and not stop.is_set() and (max_chunks is None or chunks < max_chunks):
                batch, consumed = self._read_chunk(consumer, pending, state.next_offsets, only)
                fresh = seen.new(uuid.UUID(r["_event_id"]) for _, _, r in batch)
                unique = []
                for item in batch:
                    event_id = uuid.UUID(item[2]["_event_id"])
                    if event_id in fresh:
                        fresh.discard(event_id)  # a second copy in the same chunk is skipped
                        unique.append(item)
                duplicates += len(batch) - len(unique)
                files += self._write_chunk(state.next_chunk, unique, by_type)
                seen.remember((uuid.UUID(r["_event_id"]) for _, _, r in unique),
                              state.next_chunk)
                state.exported += len(unique)
                state.next_chunk += 1
                state.save(self.out)
                chunks += 1
                progress.advance(consumed)
            if not pending:
                state.save(self.out)
            progress.finish()
        finally:
            consumer.close()
            if seen is not None:
                seen.close()
        return ExportResult(state.exported, files, resumed, time.monotonic() - started,
                            dict(by_type), duplicates)

    def _load_or_start(self, consumer: Consumer, job: dict[str, Any], topics: Sequence[str],
                       start: StartAt, only: ExportFilter) -> tuple[ExportState, bool]:
        path = self.out / CHECKPOINT
        if path.exists():
            state = ExportState.from_json(json.loads(path.read_text()))
            if state.job != job:
                raise ReplayError(f"{self.out} holds another export ({state.job}); "
                                  "use an empty --out folder")
            discard_unfinished(self.out, state.next_chunk)
            return state, True
        if any(self.out.iterdir()):
            raise ReplayError(f"{self.out} is not empty and holds no replay checkpoint")
        ranges = partition_ranges(consumer, topics, start, only.until_ms)
        state = ExportState(job, ranges, {tp: first for tp, (first, _) in ranges.items()})
        state.save(self.out)
        return state, False

    def _read_chunk(self, consumer: Consumer, pending: dict[TP, tuple[int, int]],
                    next_offsets: dict[TP, int], only: ExportFilter,
                    ) -> tuple[list[tuple[str, str, dict[str, Any]]], int]:
        """The events ``only`` keeps among up to ``chunk_size`` records, as ``(event type, day,
        record)``, and how many records were read; updates the offsets."""
        records: list[tuple[str, str, dict[str, Any]]] = []
        consumed = 0
        idle_since = time.monotonic()
        while pending and consumed < self.chunk_size:
            messages = consumer.consume(min(5000, self.chunk_size - consumed), 0.5)
            if messages:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > BROKER_TIMEOUT_S:
                raise ReplayError(f"no records from the broker for {BROKER_TIMEOUT_S:.0f} s; "
                                  f"{len(pending)} partitions unfinished")
            for msg in messages:
                tp = (msg.topic(), msg.partition())
                if tp not in pending:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        raise ReplayError(f"{tp}: {err}")
                    self._finish(consumer, pending, tp)  # the end moved below our mark? done
                    continue
                end = pending[tp][1]
                if msg.offset() >= end:
                    self._finish(consumer, pending, tp)
                    continue
                consumed += 1
                next_offsets[tp] = msg.offset() + 1
                env = EventEnvelope.from_message(msg)
                timestamp_ms = msg.timestamp()[1]
                if (only.until_ms is None or timestamp_ms < only.until_ms) and (
                        not only.streams or str(env.stream_id) in only.streams):
                    event_type, data = self.codec.decode(env.payload)
                    if only.keeps_type(event_type):
                        records.append((event_type, utc_day(timestamp_ms),
                                        export_record(env, timestamp_ms, data)))
                if next_offsets[tp] >= end:
                    self._finish(consumer, pending, tp)
        return records, consumed

    @staticmethod
    def _finish(consumer: Consumer, pending: dict[TP, tuple[int, int]], tp: TP) -> None:
        if pending.pop(tp, None) is not None:
            consumer.incremental_unassign([TopicPartition(*tp)])

    def _write_chunk(self, chunk: int, records: list[tuple[str, str, dict[str, Any]]],
                     by_type: dict[str, int]) -> int:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for event_type, day, record in records:
            groups[(event_type, day)].append(record)
        for (event_type, day), rows in groups.items():
            folder = self.out / f"type={event_type}" / f"day={day}"
            folder.mkdir(parents=True, exist_ok=True)
            if "avro" in self.formats:
                target = folder / f"part-{chunk:06d}.avro"
                tmp = target.with_name(target.name + ".tmp")
                with open(tmp, "wb") as f:
                    fastavro.writer(f, self._schema(event_type), rows, codec="deflate")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            if "parquet" in self.formats:
                if event_type not in self._arrow:
                    self._arrow[event_type] = arrow_schema(
                        export_schema(self.codec.registry, event_type))
                write_parquet(folder / f"part-{chunk:06d}.parquet", self._arrow[event_type],
                              rows)
            by_type[event_type] += len(rows)
        return len(groups) * len(self.formats)

    def _schema(self, event_type: str) -> dict[str, Any]:
        if event_type not in self._schemas:
            self._schemas[event_type] = cast("dict[str, Any]", fastavro.parse_schema(
                export_schema(self.codec.registry, event_type)))
        return self._schemas[event_type]
