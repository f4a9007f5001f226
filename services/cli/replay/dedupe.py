"""Each event once in an export, whatever the topic holds.

The relay publishes at least once: after a crash between Kafka's acknowledgement and its own
bookkeeping it sends the same events again, so a topic may hold an event twice. The export
remembers every event id it wrote in ``DIR/.replay-seen.sqlite`` (with the chunk that wrote
it) and skips an id it has seen. A resumed export first forgets the ids of the chunk that
never reached the checkpoint, as it deletes that chunk's files.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path

SEEN = ".replay-seen.sqlite"


class SeenEvents:
    """The event ids already exported, on disk beside the checkpoint."""

    def __init__(self, out: Path) -> None:
        self._db = sqlite3.connect(out / SEEN)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS seen"
                         " (event_id BLOB PRIMARY KEY, chunk INTEGER NOT NULL) WITHOUT ROWID")
        self._db.commit()

    def forget_from(self, chunk: int) -> None:
        """Forget the ids written by chunks ``>= chunk`` (never checkpointed)."""
        self._db.execute("DELETE FROM seen WHERE chunk >= ?", (chunk,))
        self._db.commit()

    def new(self, event_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of ``event_ids`` were never exported."""
        ids = set(event_ids)
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS batch (event_id BLOB PRIMARY KEY)")
        self._db.execute("DELETE FROM batch")
        self._db.executemany("INSERT INTO batch VALUES (?)", [(i.bytes,) for i in ids])
        known = {uuid.UUID(bytes=row[0]) for row in self._db.execute(
            "SELECT event_id FROM batch JOIN seen USING (event_id)")}
        return ids - known

    def remember(self, event_ids: Iterable[uuid.UUID], chunk: int) -> None:
        """Record the ids a chunk wrote (committed before the chunk's checkpoint)."""
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)",
                             [(i.bytes, chunk) for i in event_ids])
        self._db.commit()

    def close(self) -> None:
        self._db.close()
