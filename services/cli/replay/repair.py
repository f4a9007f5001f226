"""Operator repairs after a stop-with-alert (runbooks: docs/operations.md).

* :func:`republish` — a service's events, from a stated position, out of its event store
  (the truth) and onto its topic again: what rebuilds a topic that lost records or was
  recreated. It queues them in the outbox, so the ordinary relay path publishes them
  (at-least-once; projections drop what they already applied by stream version and event id).
* :func:`reset_offsets` — where a projection reads a topic from next (after a republish).
* :func:`skip_record` — move a projection past one held record, leaving an audit row in its
  dead letters.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg

from kith.cli.replay.errors import ReplayError
from kith.common.db import scalar
from kith.common.relay import RELAY_LEADER_LOCK, OutboxRelay


@dataclass
class RepublishResult:
    queued: int
    published_here: int
    seconds: float


def republish(dsn: str, bootstrap: str, topic: str, after_position: int = 0,
              stop: threading.Event | None = None, timeout_s: float = 600.0) -> RepublishResult:
    """Queue every event with ``position > after_position`` in the outbox and see it published:
    by this process when no relay leads, else by the leading relay (waited for)."""
    stop = stop or threading.Event()
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        last = scalar(conn, "SELECT coalesce(max(position), 0) FROM events")
        if after_position < 0 or after_position > last:
            raise ReplayError(f"--after-position must lie in 0..{last}")
        queued = conn.execute(
            "INSERT INTO outbox (position) SELECT position FROM events WHERE position > %s"
            " ON CONFLICT DO NOTHING", (after_position,)).rowcount
        conn.execute(f"NOTIFY kith_events, '{last}'")
        published = 0
        if scalar(conn, "SELECT pg_try_advisory_lock(%s)", (RELAY_LEADER_LOCK,)):
            try:
                relay = OutboxRelay(dsn, bootstrap, topic)
                while not stop.is_set() and (n := relay.publish_batch(conn)):
                    published += n
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (RELAY_LEADER_LOCK,))
        deadline = time.monotonic() + timeout_s
        while not stop.is_set() and scalar(
                conn, "SELECT count(*) FROM outbox WHERE position > %s", (after_position,)):
            if time.monotonic() > deadline:
                raise ReplayError("the leading relay did not publish the queued events in "
                                  f"{timeout_s:.0f} s; see its logs (they stay queued)")
            time.sleep(0.2)
    return RepublishResult(queued, published, time.monotonic() - started)


def reset_offsets(dsn: str, projection: str, topic: str, offset: int,
                  partition: int | None = None) -> int:
    """Set where ``projection`` reads ``topic`` (one partition or all) from next; return rows.
    A running runner holding the partition picks the new offset up at its next retry."""
    if offset < 0:
        raise ReplayError("--offset must not be negative")
    with psycopg.connect(dsn) as conn, conn.transaction():
        rows = conn.execute(
            "UPDATE projection_offsets SET next_offset = %s WHERE projection = %s AND topic = %s"
            " AND (%s::int IS NULL OR partition = %s)",
            (offset, projection, topic, partition, partition)).rowcount
    if not rows:
        raise ReplayError(f"{projection} has no stored offsets for {topic}"
                          + (f"/{partition}" if partition is not None else ""))
    return rows


def skip_record(dsn: str, projection: str, topic: str, partition: int, offset: int,
                reason: str) -> None:
    """Move ``projection`` past the record at ``topic/partition/offset`` — only if that is
    where it stands — and record who skipped what and why in ``projection_dead_letters``."""
    if not reason.strip():
        raise ReplayError("--reason is required: it goes into the audit record")
    with psycopg.connect(dsn) as conn, conn.transaction():
        row = conn.execute(
            "SELECT next_offset FROM projection_offsets WHERE projection = %s AND topic = %s"
            " AND partition = %s FOR UPDATE", (projection, topic, partition)).fetchone()
        if row is None or row[0] != offset:
            raise ReplayError(f"{projection} stands at {row[0] if row else 'nothing'} on "
                              f"{topic}/{partition}, not {offset}: nothing skipped")
        conn.execute(
            "INSERT INTO projection_dead_letters (projection, topic, partition, \"offset\","
            " error) VALUES (%s, %s, %s, %s, %s)",
            (projection, topic, partition, offset, f"skipped by an operator: {reason}"))
        conn.execute("UPDATE projection_offsets SET next_offset = %s WHERE projection = %s"
                     " AND topic = %s AND partition = %s",
                     (offset + 1, projection, topic, partition))
