"""The write side of every service: an append-only Postgres ``events`` table.

* ``append`` states the version it expects the stream to be at; if another
  command got there first, the unique ``(stream_id, version)`` key rejects it
  and :class:`ConcurrencyError` is raised: exactly one concurrent writer wins.
* Each append also records its positions in the ``outbox`` table, in the same
  transaction. The relay publishes whatever the outbox holds, in position
  order, and deletes it after Kafka's acknowledgement. Appends take no global
  lock (concurrent commits group-commit), positions may become visible out of
  order, and still nothing is skipped: a late-committing event simply appears
  in the outbox later. Per-stream order holds because a stream's version
  ``n+1`` can only be inserted after version ``n`` committed, so it is
  allocated a larger position and becomes visible after it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from kith.common import tracing
from kith.common.codec import AvroCodec
from kith.common.crypto import KeyTable


class ConcurrencyError(Exception):
    """The stream moved past the expected version: reload and retry the command."""

    def __init__(self, stream_id: uuid.UUID, expected_version: int) -> None:
        super().__init__(f"stream {stream_id} is no longer at version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


@dataclass(frozen=True)
class NewEvent:
    """An event a command decided on, before it is recorded."""

    type: str
    data: dict[str, Any]
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class StreamPayloads:
    """A stream's payloads in version order, as a command replays them, and the stored
    (wrapped) data key of the stream when the load asked for one (``None``: no key row —
    never made, or destroyed)."""

    payloads: list[bytes]
    stored_key: bytes | None = None


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    stream_id: uuid.UUID
    version: int
    event_id: uuid.UUID
    type: str
    payload: bytes
    metadata: dict[str, Any]
    recorded_at: datetime


# One event: its row, its outbox row and the relay's wake-up in one round trip (the data-
# modifying CTE runs whether or not the outer query reads it; one NOTIFY per transaction).
_APPEND_ONE = (
    "WITH e AS (INSERT INTO events (stream_id, version, event_id, event_type, payload,"
    " metadata) VALUES (%s, %s, %s, %s, %s, %s) RETURNING position, recorded_at),"
    " o AS (INSERT INTO outbox (position) SELECT position FROM e)"
    " SELECT position, recorded_at, pg_notify('kith_events', '') FROM e")


class EventStore:
    """Append to and read from one service's ``events`` table."""

    def __init__(self, pool: ConnectionPool, codec: AvroCodec) -> None:
        self.pool = pool
        self.codec = codec

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """A connection in a transaction, committed on success, for read models + append."""
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    def append(self, stream_id: uuid.UUID, expected_version: int, events: Sequence[NewEvent],
               metadata: dict[str, Any] | None = None,
               conn: psycopg.Connection | None = None,
               savepoint: bool = True) -> list[RecordedEvent]:
        """Record ``events`` as versions ``expected_version + 1 …``; raise on a version conflict.

        With ``conn`` the append joins the caller's transaction (which must commit it);
        without, it runs in a transaction of its own. A conflict leaves the caller's
        transaction usable (the append runs in a savepoint) unless ``savepoint`` is false:
        then the caller must roll back (or back to its own savepoint) on any error — as a
        :class:`~kith.common.commands.CommandRunner` attempt does — and saves two round
        trips (``SAVEPOINT``, ``RELEASE``).
        """
        if not events:
            return []
        if conn is None:
            with self.transaction() as own:
                return self.append(stream_id, expected_version, events, metadata, own)
        meta = json.dumps(tracing.with_trace_context(metadata or {}))
        rows = [
            (stream_id, expected_version + i + 1, e.event_id, e.type,
             self.codec.encode(e.type, e.data), meta)
            for i, e in enumerate(events)
        ]
        recorded: list[RecordedEvent] = []
        try:
            # A savepoint (unless the caller rolls back itself): a conflict leaves the
            # caller's transaction usable.
            with conn.transaction() if savepoint else nullcontext(), conn.cursor() as cur:
                if len(rows) == 1:  # the common case: event, outbox row and NOTIFY at once
                    (row,) = rows
                    position, recorded_at, _ = cur.execute(_APPEND_ONE, row).fetchone()  # type: ignore[misc]
                    recorded.append(RecordedEvent(position, row[0], row[1], row[2], row[3],
                                                  row[4], metadata or {}, recorded_at))
                    return recorded
                cur.executemany(
                    "INSERT INTO events (stream_id, version, event_id, event_type, payload,"
                    " metadata) VALUES (%s, %s, %s, %s, %s, %s)"
                    " RETURNING position, recorded_at",
                    rows, returning=True,
                )
                for row in rows:
                    position, recorded_at = cur.fetchone()  # type: ignore[misc]
                    recorded.append(RecordedEvent(position, row[0], row[1], row[2], row[3],
                                                  row[4], metadata or {}, recorded_at))
                    cur.nextset()
                cur.execute("WITH o AS (INSERT INTO outbox (position)"
                            " SELECT unnest(%s::bigint[])) SELECT pg_notify('kith_events', '')",
                            ([r.position for r in recorded],))
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "events_stream_id_version_key":
                raise ConcurrencyError(stream_id, expected_version) from None
            raise
        return recorded

    def load(self, stream_id: uuid.UUID, conn: psycopg.Connection | None = None
             ) -> list[RecordedEvent]:
        """Every event of one stream, in version order."""
        query = ("SELECT position, stream_id, version, event_id, event_type, payload, metadata,"
                 " recorded_at FROM events WHERE stream_id = %s ORDER BY version")
        if conn is not None:
            return [RecordedEvent(*r) for r in conn.execute(query, (stream_id,))]
        with self.pool.connection() as own:
            return [RecordedEvent(*r) for r in own.execute(query, (stream_id,))]

    def load_payloads(self, stream_id: uuid.UUID, conn: psycopg.Connection,
                      keyed_by: KeyTable | None = None) -> StreamPayloads:
        """A command's load: the stream's payloads in version order (no metadata, positions
        or times to parse) in one statement. ``keyed_by``: a table of data keys whose row id
        is the stream id (one id column); its stored key comes back in the same statement,
        read in the same snapshot as the events (no second round trip), still wrapped."""
        if keyed_by is None:
            rows = conn.execute("SELECT payload, NULL FROM events WHERE stream_id = %s"
                                " ORDER BY version", (stream_id,)).fetchall()
        else:
            (id_column,) = keyed_by.id_columns
            # The key rides on the stream's first event only (one index probe, one copy).
            rows = conn.execute(
                f"SELECT e.payload, k.{keyed_by.key_column} FROM events e"
                f" LEFT JOIN {keyed_by.table} k ON e.version = 1"
                f" AND k.{id_column} = e.stream_id"
                " WHERE e.stream_id = %s ORDER BY e.version", (stream_id,)).fetchall()
        stored = rows[0][1] if rows else None
        return StreamPayloads([r[0] for r in rows], None if stored is None else bytes(stored))

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events in global order after ``after_position``."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT position, stream_id, version, event_id, event_type, payload, metadata,"
                " recorded_at FROM events WHERE position > %s ORDER BY position LIMIT %s",
                (after_position, limit),
            ).fetchall()
        return [RecordedEvent(*r) for r in rows]

    def decode(self, event: RecordedEvent) -> dict[str, Any]:
        return self.codec.decode(event.payload)[1]
