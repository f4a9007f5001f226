"""``kith replay``: read the event topics again, for analysts and for operators.

    kith replay export --out DIR [--topic T]... [--from-offset N | --since ISO-8601]
    kith replay rebuild SERVICE PROJECTION [--batch-size N] [--keep-old]

**export** writes Avro object container files (what DuckDB, pandas/fastavro
and Spark read directly) laid out as
``DIR/<topic>/<event type>/<YYYY-MM-DD>/part-<chunk>.avro``: one record per
event with the envelope (``_topic``, ``_partition``, ``_offset``,
``_timestamp``, ``_stream_id``, ``_event_id``, ``_stream_version``,
``_position``, ``_metadata``) and the payload fields decoded with the newest
schema of the event type. The day is the Kafka record's timestamp (UTC). The
export is bounded: it stops at the end offsets seen when it started.

Personal data: encrypted fields (:func:`kith.common.crypto.is_encrypted`) are
exported as null. The tool holds no data keys and never decrypts, so no
personal data of any user — shredded or not — can reach an export.

Resuming: the export writes in chunks; a chunk's files get the chunk's number
and become part of the export only when ``DIR/.replay-checkpoint.json`` names
the next chunk. Rerunning the same command after an interruption deletes the
files of the unfinished chunk and continues from the recorded offsets, so
every event is exported exactly once.

**rebuild** builds a fresh copy of a projection side by side and swaps it in
without downtime (see :func:`rebuild_projection`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

import fastavro
import psycopg
from confluent_kafka import Consumer, KafkaError, TopicPartition
from psycopg import sql
from psycopg.conninfo import make_conninfo

from kith.common.codec import AvroCodec, SchemaRegistry, default_schemas_dir
from kith.common.config import SERVICES, Settings
from kith.common.crypto import is_encrypted
from kith.common.kafka import EventEnvelope, consumer_config
from kith.common.projection import Event, Projection, ProjectionRunner

CHECKPOINT = ".replay-checkpoint.json"
_BROKER_TIMEOUT_S = 15.0
TP = tuple[str, int]


class ReplayError(RuntimeError):
    """The replay cannot start or go on (bad arguments, a foreign checkpoint, …)."""


# -- progress -------------------------------------------------------------------------------


class Progress:
    """Events done / total, events per second and ETA on stderr, at most every ``every_s``."""

    def __init__(self, label: str, total: int, done: int = 0, stream: TextIO | None = None,
                 every_s: float = 0.5) -> None:
        self.label = label
        self.total = total
        self.done = done
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._start_done = done
        self._started = time.monotonic()
        self._last = 0.0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int, force: bool = False) -> None:
        self.done += n
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            self.stream.write(self.line() + ("\r" if self.stream.isatty() else "\n"))
            self.stream.flush()

    def line(self) -> str:
        rate = self.rate
        left = max(0, self.total - self.done)
        eta = time.strftime("%H:%M:%S", time.gmtime(left / rate)) if rate > 0 else "--:--:--"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.label}: {self.done:,}/{self.total:,} events ({pct:5.1f}%)"
                f"  {rate:,.0f} ev/s  ETA {eta}")

    def finish(self) -> None:
        self.advance(0, force=True)
        if self.stream.isatty():
            self.stream.write("\n")


# -- export: where to start -----------------------------------------------------------------


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
        meta = consumer.list_topics(topic, timeout=_BROKER_TIMEOUT_S).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise ReplayError(f"topic {topic!r} does not exist")
        for partition in sorted(meta.partitions):
            tp = TopicPartition(topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=_BROKER_TIMEOUT_S)
            if start.kind == "offset":
                first = min(max(low, start.value), high)
            elif start.kind == "time":
                tp.offset = start.value
                found = consumer.offsets_for_times([tp], timeout=_BROKER_TIMEOUT_S)[0].offset
                first = high if found < 0 else max(low, found)
            else:
                first = low
            ranges[(topic, partition)] = (first, high)
    return ranges


# -- export: records and files --------------------------------------------------------------

_ENVELOPE_FIELDS: list[dict[str, Any]] = [
    {"name": "_topic", "type": "string"},
    {"name": "_partition", "type": "int"},
    {"name": "_offset", "type": "long"},
    {"name": "_timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "_stream_id", "type": "string"},
    {"name": "_event_id", "type": "string"},
    {"name": "_stream_version", "type": "long"},
    {"name": "_position", "type": "long"},
    {"name": "_metadata", "type": "string", "doc": "JSON"},
]


def _nullable_strings(schema: Any) -> Any:
    """``schema`` with every string made ``["null", "string"]`` (room for redacted values)."""
    if schema == "string" or (isinstance(schema, dict) and schema.get("type") == "string"):
        return ["null", schema]
    if isinstance(schema, list):
        union: list[Any] = []
        for member in schema:
            made = _nullable_strings(member)
            union += [m for m in (made if isinstance(made, list) else [made]) if m not in union]
        return union
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "record":
            # Defaults go: a default must match a union's first branch, and readers need none.
            return {**schema, "fields": [
                {**{k: v for k, v in f.items() if k != "default"},
                 "type": _nullable_strings(f["type"])} for f in schema["fields"]]}
        if kind == "array":
            return {**schema, "items": _nullable_strings(schema["items"])}
        if kind == "map":
            return {**schema, "values": _nullable_strings(schema["values"])}
    return schema


def export_schema(registry: SchemaRegistry, event_type: str) -> dict[str, Any]:
    """The container-file schema of one event type: envelope + nullable-string payload."""
    raw = json.loads(registry.latest(event_type).path.read_text())
    payload = _nullable_strings(raw)
    for f in payload["fields"]:
        if f["name"].startswith("_"):
            raise ReplayError(f"{event_type}.{f['name']}: payload fields starting with _ clash "
                              "with the export's envelope fields")
    return {**payload, "fields": [*_ENVELOPE_FIELDS, *payload["fields"]]}


def redact(value: Any) -> Any:
    """Replace every encrypted field (at any depth) with None."""
    if is_encrypted(value):
        return None
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def export_record(env: EventEnvelope, timestamp_ms: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "_topic": env.topic, "_partition": env.partition, "_offset": env.offset,
        "_timestamp": timestamp_ms, "_stream_id": str(env.stream_id),
        "_event_id": str(env.event_id), "_stream_version": env.version,
        "_position": env.position, "_metadata": json.dumps(env.metadata, sort_keys=True),
        **redact(data),
    }


def _day(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d")


_PART = re.compile(r"^part-(\d+)\.avro$")


@dataclass
class ExportState:
    """The checkpoint: the job, its offset ranges, the next offsets and the next chunk."""

    job: dict[str, Any]
    ranges: dict[TP, tuple[int, int]]
    next_offsets: dict[TP, int]
    next_chunk: int = 0
    exported: int = 0

    def remaining(self) -> int:
        return sum(max(0, end - self.next_offsets[tp]) for tp, (_, end) in self.ranges.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job, "next_chunk": self.next_chunk, "exported": self.exported,
            "partitions": [{"topic": t, "partition": p, "first": f, "end": e,
                            "next": self.next_offsets[(t, p)]}
                           for (t, p), (f, e) in sorted(self.ranges.items())],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExportState:
        parts = raw["partitions"]
        ranges = {(r["topic"], r["partition"]): (r["first"], r["end"]) for r in parts}
        nexts = {(r["topic"], r["partition"]): r["next"] for r in parts}
        return cls(raw["job"], ranges, nexts, raw["next_chunk"], raw["exported"])

    def save(self, out: Path) -> None:
        tmp = out / (CHECKPOINT + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.to_json(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out / CHECKPOINT)


@dataclass
class ExportResult:
    exported: int
    files: int
    resumed: bool
    seconds: float
    by_type: dict[str, int] = field(default_factory=dict)


class Exporter:
    """Exports topics into Avro container files, chunk by chunk, resumably."""

    def __init__(self, bootstrap: str, codec: AvroCodec, out: Path, chunk_size: int = 50_000,
                 progress_stream: TextIO | None = None) -> None:
        if chunk_size < 1:
            raise ReplayError("--chunk-size must be at least 1")
        self.bootstrap = bootstrap
        self.codec = codec
        self.out = out
        self.chunk_size = chunk_size
        self.progress_stream = progress_stream
        self._schemas: dict[str, dict[str, Any]] = {}

    def run(self, topics: Sequence[str], start: StartAt,
            stop: threading.Event | None = None, max_chunks: int | None = None) -> ExportResult:
        """Export (or resume exporting) ``topics``; stop early on ``stop`` or after
        ``max_chunks`` chunks (the next run resumes)."""
        stop = stop or threading.Event()
        self.out.mkdir(parents=True, exist_ok=True)
        job = {"topics": sorted(topics), "start": [start.kind, start.value]}
        consumer = Consumer(consumer_config(
            self.bootstrap, f"replay.export.{uuid.uuid4().hex}", **{"enable.partition.eof": True}))
        started = time.monotonic()
        files = 0
        by_type: dict[str, int] = defaultdict(int)
        try:
            state, resumed = self._load_or_start(consumer, job, topics, start)
            progress = Progress("export", state.exported + state.remaining(), state.exported,
                                self.progress_stream)
            pending = {tp: (o, state.ranges[tp][1]) for tp, o in state.next_offsets.items()
                       if o < state.ranges[tp][1]}
            if pending:
                consumer.incremental_assign([TopicPartition(t, p, o)
                                             for (t, p), (o, _) in pending.items()])
            chunks = 0
            while pending and not stop.is_set() and (max_chunks is None or chunks < max_chunks):
                batch = self._read_chunk(consumer, pending, state.next_offsets)
                files += self._write_chunk(state.next_chunk, batch, by_type)
                state.exported += len(batch)
                state.next_chunk += 1
                state.save(self.out)
                chunks += 1
                progress.advance(len(batch))
            if not pending:
                state.save(self.out)
            progress.finish()
        finally:
            consumer.close()
        return ExportResult(state.exported, files, resumed, time.monotonic() - started,
                            dict(by_type))

    def _load_or_start(self, consumer: Consumer, job: dict[str, Any], topics: Sequence[str],
                       start: StartAt) -> tuple[ExportState, bool]:
        path = self.out / CHECKPOINT
        if path.exists():
            state = ExportState.from_json(json.loads(path.read_text()))
            if state.job != job:
                raise ReplayError(f"{self.out} holds another export ({state.job}); "
                                  "use an empty --out folder")
            self._discard_unfinished(state.next_chunk)
            return state, True
        if any(self.out.iterdir()):
            raise ReplayError(f"{self.out} is not empty and holds no replay checkpoint")
        ranges = partition_ranges(consumer, topics, start)
        state = ExportState(job, ranges, {tp: first for tp, (first, _) in ranges.items()})
        state.save(self.out)
        return state, False

    def _discard_unfinished(self, next_chunk: int) -> None:
        """Delete what an interrupted chunk left behind (its checkpoint was never written)."""
        for path in self.out.rglob("*"):
            if not path.is_file():
                continue
            match = _PART.match(path.name)
            if path.name.endswith(".tmp") or (match and int(match[1]) >= next_chunk):
                path.unlink()

    def _read_chunk(self, consumer: Consumer, pending: dict[TP, tuple[int, int]],
                    next_offsets: dict[TP, int]) -> list[tuple[str, str, dict[str, Any]]]:
        """Up to ``chunk_size`` events as ``(event type, day, record)``; updates the offsets."""
        records: list[tuple[str, str, dict[str, Any]]] = []
        idle_since = time.monotonic()
        while pending and len(records) < self.chunk_size:
            messages = consumer.consume(min(5000, self.chunk_size - len(records)), 0.5)
            if messages:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > _BROKER_TIMEOUT_S:
                raise ReplayError(f"no records from the broker for {_BROKER_TIMEOUT_S:.0f} s; "
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
                env = EventEnvelope.from_message(msg)
                event_type, data = self.codec.decode(env.payload)
                timestamp_ms = msg.timestamp()[1]
                records.append((event_type, _day(timestamp_ms),
                                export_record(env, timestamp_ms, data)))
                next_offsets[tp] = msg.offset() + 1
                if next_offsets[tp] >= end:
                    self._finish(consumer, pending, tp)
        return records

    @staticmethod
    def _finish(consumer: Consumer, pending: dict[TP, tuple[int, int]], tp: TP) -> None:
        if pending.pop(tp, None) is not None:
            consumer.incremental_unassign([TopicPartition(*tp)])

    def _write_chunk(self, chunk: int, records: list[tuple[str, str, dict[str, Any]]],
                     by_type: dict[str, int]) -> int:
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for event_type, day, record in records:
            groups[(record["_topic"], event_type, day)].append(record)
        for (topic, event_type, day), rows in groups.items():
            folder = self.out / topic / event_type / day
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"part-{chunk:06d}.avro"
            tmp = target.with_name(target.name + ".tmp")
            with open(tmp, "wb") as f:
                fastavro.writer(f, self._schema(event_type), rows, codec="deflate")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            by_type[event_type] += len(rows)
        return len(groups)

    def _schema(self, event_type: str) -> dict[str, Any]:
        if event_type not in self._schemas:
            self._schemas[event_type] = fastavro.parse_schema(
                export_schema(self.codec.registry, event_type))
        return self._schemas[event_type]


# -- rebuild --------------------------------------------------------------------------------


class Rebuildable(Projection, Protocol):
    """A projection that can be rebuilt side by side: it names its tables (in ``public``) and
    addresses them unqualified, so that a ``search_path`` can point it at a shadow copy."""

    tables: Sequence[str]


@dataclass
class Renamed:
    """The same projection under another name (own consumer group, offsets and versions)."""

    inner: Projection
    name: str

    @property
    def topics(self) -> Sequence[str]:
        return self.inner.topics

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        self.inner.apply(conn, events)

    def reset(self, conn: psycopg.Connection) -> None:
        self.inner.reset(conn)


@dataclass
class RebuildResult:
    applied: int
    seconds: float
    swap_seconds: float


def _ident(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:40]


def _offsets(conn: psycopg.Connection, projection: str, lock: bool = False) -> dict[TP, int]:
    query = ("SELECT topic, partition, next_offset FROM projection_offsets WHERE projection = %s"
             " ORDER BY topic, partition" + (" FOR UPDATE" if lock else ""))
    return {(t, p): o for t, p, o in conn.execute(query, (projection,))}


def _behind(shadow: dict[TP, int], live: dict[TP, int]) -> int:
    return sum(max(0, o - shadow.get(tp, 0)) for tp, o in live.items())


def rebuild_projection(projection: Rebuildable, dsn: str, bootstrap: str, codec: AvroCodec,
                       batch_size: int = 2000, keep_old: bool = False,
                       stop: threading.Event | None = None, progress_stream: TextIO | None = None,
                       swap_timeout_s: float = 60.0) -> RebuildResult:
    """Rebuild ``projection`` from offset zero beside the live copy, then swap it in.

    1. Its tables are copied empty (``CREATE TABLE … (LIKE … INCLUDING ALL)``) into the
       schema ``rebuild_<name>``; a runner named ``<name>__rebuild`` (its own consumer group,
       offsets and stream versions) fills them from offset zero, its connections using
       ``search_path = rebuild_<name>, public``. An interrupted rebuild resumes from there.
    2. Once it has caught up, one transaction locks the live projection's offset rows (the
       live runner waits at its next batch), lets the copy reach at least those offsets,
       moves the live tables out and the copy's into ``public``, and hands the copy's offsets
       and stream versions to the live name. The live runner then goes on from the copy's
       offsets, dropping what it had already read below them. Readers wait only for the
       renames; nothing is served half-built.
    """
    tables = list(getattr(projection, "tables", ()) or ())
    if not tables:
        raise ReplayError(f"projection {projection.name!r} does not name its tables; "
                          "it can only be rebuilt in place (ProjectionRunner.rebuild)")
    stop = stop or threading.Event()
    live, shadow_name = projection.name, f"{projection.name}__rebuild"
    shadow, retired = f"rebuild_{_ident(live)}", f"retired_{_ident(live)}"
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        _check_copyable(conn, tables)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(shadow)))
        for table in tables:
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} (LIKE public.{} INCLUDING ALL)")
                         .format(sql.Identifier(shadow), sql.Identifier(table),
                                 sql.Identifier(table)))
    shadow_dsn = make_conninfo(dsn, options=f"-c search_path={shadow},public")
    runner = ProjectionRunner(Renamed(projection, shadow_name), shadow_dsn, bootstrap, codec,
                              batch_size=batch_size)
    runner.open()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            total = sum(end_offsets(bootstrap, projection.topics).values())
            done = sum(_offsets(conn, shadow_name).values())
            progress = Progress(f"rebuild {live}", total, done, progress_stream)
            while not stop.is_set():
                runner.step()
                now = sum(_offsets(conn, shadow_name).values())
                progress.advance(now - progress.done)
                if now >= total and _behind(_offsets(conn, shadow_name), _offsets(conn, live)) == 0:
                    break
            progress.finish()
        if stop.is_set():
            raise ReplayError(f"rebuild of {live} interrupted; rerun to resume")
        swap_started = time.monotonic()
        _swap(dsn, runner, live, shadow_name, tables, shadow, retired, keep_old, swap_timeout_s)
        swap_seconds = time.monotonic() - swap_started
    finally:
        runner.close()
    return RebuildResult(runner.applied, time.monotonic() - started, swap_seconds)


def _check_copyable(conn: psycopg.Connection, tables: list[str]) -> None:
    """Refuse tables that are missing or take ``serial`` defaults: a copy would keep using
    the live table's sequence, which goes when the replaced table is dropped."""
    found = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_name = ANY(%s)", (tables,))}
    if missing := sorted(set(tables) - found):
        raise ReplayError(f"no table {', '.join(missing)} in schema public")
    serial = conn.execute(
        "SELECT table_name || '.' || column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = ANY(%s)"
        " AND column_default LIKE 'nextval(%%'", (tables,)).fetchall()
    if serial:
        raise ReplayError(f"{', '.join(r[0] for r in serial)}: serial columns cannot be "
                          "rebuilt side by side (use GENERATED … AS IDENTITY)")


def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TP, int]:
    """The current high watermark of every partition of ``topics``."""
    consumer = Consumer(consumer_config(bootstrap, f"replay.probe.{uuid.uuid4().hex}"))
    try:
        return {tp: end for tp, (_, end)
                in partition_ranges(consumer, topics, StartAt()).items()}
    finally:
        consumer.close()


def _swap(dsn: str, runner: ProjectionRunner, live: str, shadow_name: str, tables: list[str],
          shadow: str, retired: str, keep_old: bool, timeout_s: float) -> None:
    ident = sql.Identifier
    with psycopg.connect(dsn) as conn, conn.transaction():
        live_offsets = _offsets(conn, live, lock=True)  # the live runner waits from here on
        deadline = time.monotonic() + timeout_s
        while _behind(_offsets(conn, shadow_name), live_offsets) > 0:
            if time.monotonic() > deadline:
                raise ReplayError(f"the copy of {live} did not reach the live offsets in "
                                  f"{timeout_s:.0f} s; nothing was swapped")
            runner.step()
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            sql.SQL(", ").join(sql.SQL("public.{}").format(ident(t)) for t in tables)))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(retired)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident(retired)))
        for table in tables:
            conn.execute(sql.SQL("ALTER TABLE public.{} SET SCHEMA {}").format(
                ident(table), ident(retired)))
            conn.execute(sql.SQL("ALTER TABLE {}.{} SET SCHEMA public").format(
                ident(shadow), ident(table)))
        # Update the live rows in place: a live runner blocked on them re-reads the new offsets.
        conn.execute("UPDATE projection_offsets AS l SET next_offset = s.next_offset"
                     " FROM projection_offsets AS s WHERE l.projection = %s AND s.projection = %s"
                     " AND l.topic = s.topic AND l.partition = s.partition", (live, shadow_name))
        conn.execute("INSERT INTO projection_offsets (projection, topic, partition, next_offset)"
                     " SELECT %s, topic, partition, next_offset FROM projection_offsets"
                     " WHERE projection = %s ON CONFLICT DO NOTHING", (live, shadow_name))
        conn.execute("DELETE FROM projection_offsets WHERE projection = %s", (shadow_name,))
        conn.execute("DELETE FROM projection_streams WHERE projection = %s", (live,))
        conn.execute("UPDATE projection_streams SET projection = %s WHERE projection = %s",
                     (live, shadow_name))
        conn.execute(sql.SQL("DROP SCHEMA {}").format(ident(shadow)))
        if not keep_old:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(ident(retired)))


# -- entry point ----------------------------------------------------------------------------


def resolve_topics(settings: Settings, names: Sequence[str]) -> list[str]:
    """Service names (``post``) become their topics; anything else is taken as a topic name."""
    if not names or list(names) == ["all"]:
        return [settings.topic(s) for s in SERVICES]
    return [settings.topic(n) if n in SERVICES else n for n in names]


@dataclass
class WithTables:
    """A projection with the tables it owns named from outside (see :class:`Rebuildable`)."""

    inner: Projection
    tables: Sequence[str]

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def topics(self) -> Sequence[str]:
        return self.inner.topics

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        self.inner.apply(conn, events)

    def reset(self, conn: psycopg.Connection) -> None:
        self.inner.reset(conn)


# The fan-out worker's read model. ``feed_refs`` (uuid → surrogate id, never rewritten) is
# left out on purpose: the copy shares it through the search_path, so ids stay the same.
FEED_FANOUT_TABLES = ("feed_niches", "feed_members", "feed_blocks", "feed_posts", "feed_entries")


def feed_fanout(settings: Settings) -> tuple[Rebuildable, str]:
    """The fan-out worker's projection (run by ``kith feed fanout``, not by a SPEC)."""
    from kith.feed.entrypoint import fanout_runner

    runner = fanout_runner(settings)  # also migrates the feed database
    tables = getattr(runner.projection, "tables", None) or FEED_FANOUT_TABLES
    return WithTables(runner.projection, tables), runner.dsn


# Projections that run in workers of their own rather than in a service's SPEC.
WORKER_PROJECTIONS: dict[tuple[str, str], Callable[[Settings], tuple[Rebuildable, str]]] = {
    ("feed", "feed.fanout"): feed_fanout,
}


def find_projection(settings: Settings, service: str, name: str
                    ) -> tuple[Projection, str, Callable[[], None]]:
    """``(projection, dsn, close)`` of a worker's projection or one in ``kith.<service>``'s
    SPEC."""
    from kith.common.codec import default_codec
    from kith.common.db import make_pool
    from kith.common.eventstore import EventStore
    from kith.common.service import ServiceContext

    if (service, name) in WORKER_PROJECTIONS:
        projection, dsn = WORKER_PROJECTIONS[(service, name)](settings)
        return projection, dsn, lambda: None
    try:
        spec = importlib.import_module(f"kith.{service}.entrypoint").SPEC
    except (ModuleNotFoundError, AttributeError):
        raise ReplayError(f"no service {service!r} with a SPEC") from None
    dsn = settings.database_url(spec.name)
    pool = make_pool(dsn, max_size=2, name=f"replay-{service}")
    ctx = ServiceContext(spec.name, settings, dsn, pool, default_codec(),
                         EventStore(pool, default_codec()))
    found = {p.name: p for p in spec.projections(ctx)}
    if name not in found:
        pool.close()
        raise ReplayError(f"{service} has no projection {name!r}; it has: "
                          f"{', '.join(sorted(found)) or 'none'}")
    return found[name], dsn, pool.close


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kith replay", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="topics → Avro container files")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--topic", action="append", default=[],
                        help="a service (post) or topic name; repeatable; default: all")
    export.add_argument("--from-offset", type=int, default=None)
    export.add_argument("--since", default=None, help="ISO-8601 time (UTC if no zone)")
    export.add_argument("--chunk-size", type=int, default=50_000)
    export.add_argument("--schemas", type=Path, default=None, help="default: KITH_SCHEMAS_DIR")
    rebuild = sub.add_parser("rebuild", help="a fresh copy of a projection, swapped in live")
    rebuild.add_argument("service")
    rebuild.add_argument("projection")
    rebuild.add_argument("--batch-size", type=int, default=2000)
    rebuild.add_argument("--keep-old", action="store_true",
                         help="keep the replaced tables in schema retired_<projection>")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            if args.command == "export":
                codec = AvroCodec(SchemaRegistry(args.schemas or default_schemas_dir()))
                exporter = Exporter(settings.require_kafka(), codec, args.out, args.chunk_size)
                result = exporter.run(resolve_topics(settings, args.topic),
                                      StartAt.parse(args.from_offset, args.since), stop)
                print(json.dumps({"exported": result.exported, "files": result.files,
                                  "resumed": result.resumed, "complete": not stop.is_set(),
                                  "seconds": round(result.seconds, 3)}))
            else:
                from kith.common.codec import default_codec

                projection, dsn, close = find_projection(settings, args.service, args.projection)
                try:
                    rebuilt = rebuild_projection(cast(Rebuildable, projection), dsn,
                                                 settings.require_kafka(), default_codec(),
                                                 args.batch_size, args.keep_old, stop)
                finally:
                    close()
                print(json.dumps({"projection": args.projection, "applied": rebuilt.applied,
                                  "seconds": round(rebuilt.seconds, 3),
                                  "swap_seconds": round(rebuilt.swap_seconds, 3)}))
        except ReplayError as exc:
            print(f"kith replay: {exc}", file=sys.stderr)
            return 1
    return 130 if stop.is_set() else 0


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM finish the current chunk or batch, checkpoint, and stop."""
    import signal

    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
