"""Feed queries over ``feed_entries``, re-checking membership and blocks at read time.

The home feed merges the viewer's niches: one bounded index range per niche
(``LIMIT`` each), then the newest of those — the key's single index serves it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from kith.feed.domain import PostKey

_VISIBLE = (" AND NOT EXISTS (SELECT 1 FROM feed_blocks b"
            " WHERE (b.blocker = e.user_id AND b.blocked = e.author_id)"
            " OR (b.blocker = e.author_id AND b.blocked = e.user_id))")


def _after(ts: int) -> str:
    """Below the cursor's key, in parameters ``$ts`` and the next."""
    return f" AND (e.created_at_ms, e.post_id) < (${ts}, ${ts + 1})"


def _home_sql(after: bool) -> str:
    return ("SELECT e.created_at_ms, e.post_id::text, n.uuid::text, a.uuid::text"
            " FROM feed_refs v JOIN feed_members m ON m.user_id = v.id"
            " CROSS JOIN LATERAL (SELECT * FROM feed_entries e"
            "   WHERE e.user_id = m.user_id AND e.niche_id = m.niche_id"
            + (_after(3) if after else "") + _VISIBLE
            + "   ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT $2) e"
            " JOIN feed_refs n ON n.id = e.niche_id JOIN feed_refs a ON a.id = e.author_id"
            " WHERE v.uuid = $1"
            " ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT $2")


def _niche_sql(after: bool) -> str:
    return ("SELECT e.created_at_ms, e.post_id::text, $4::uuid::text, a.uuid::text"
            " FROM feed_entries e"
            " JOIN feed_refs a ON a.id = e.author_id"
            " WHERE e.user_id = $1 AND e.niche_id = $3"
            + (_after(5) if after else "") + _VISIBLE
            + " ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT $2")


# The statements, in PostgreSQL's own placeholders for a RawCursor (home: $1 viewer, $2 limit,
# $3 $4 the cursor's key; niche: $1 the viewer's ref, $2 limit, $3 $4 the niche's ref and id,
# $5 $6 the key): no per-call query conversion, prepared on each connection at first use.
_HOME = {after: _home_sql(after) for after in (False, True)}
_NICHE = {after: _niche_sql(after) for after in (False, True)}
_MEMBER = ("SELECT v.id, n.id FROM feed_refs v, feed_refs n, feed_members m"
           " WHERE v.uuid = $1 AND n.uuid = $2 AND m.niche_id = n.id AND m.user_id = v.id")


class Entry(NamedTuple):
    """A page entry; ids as text (the statements cast them: no ``uuid.UUID`` made per row
    only to be turned back into text for the page)."""

    created_at_ms: int
    post_id: str
    niche_id: str
    author_id: str

    @property
    def key(self) -> PostKey:
        return (self.created_at_ms, uuid.UUID(self.post_id))


_entry = Entry._make  # tuple.__new__: a row becomes an Entry without a Python-level call


T = TypeVar("T")


def read_pool(dsn: str, max_size: int = 16) -> ConnectionPool:
    """Autocommit connections, not checked on checkout: a page is one statement, one round
    trip (a checked, transactional connection cost three more: check, BEGIN, COMMIT). A
    connection broken by a server restart fails its statement, which
    :meth:`FeedReader._run` retries once after the pool has dropped every broken one."""
    pool = ConnectionPool(dsn, min_size=2, max_size=max_size, name="feed-reads", open=False,
                          kwargs={"autocommit": True})
    pool.open(wait=True, timeout=30)
    return pool


class FeedReader:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def _run(self, read: Callable[[psycopg.Connection], T]) -> T:
        try:
            with self.pool.connection() as conn:
                return read(conn)
        except psycopg.OperationalError:  # a stale connection: drop every broken one, retry
            self.pool.check()
            with self.pool.connection() as conn:
                return read(conn)

    def niche_page(self, viewer: uuid.UUID, niche: uuid.UUID, after: PostKey | None,
                   limit: int) -> list[Entry] | None:
        """Up to ``limit`` entries below ``after``; ``None`` if the viewer is not a member."""
        return self._run(lambda conn: self._niche_page(conn, viewer, niche, after, limit))

    def _niche_page(self, conn: psycopg.Connection, viewer: uuid.UUID, niche: uuid.UUID,
                    after: PostKey | None, limit: int) -> list[Entry] | None:
        cur = psycopg.RawCursor(conn)
        member = cur.execute(_MEMBER, (viewer, niche), prepare=True).fetchone()
        if member is None:
            return None
        keys = (after[0], after[1]) if after else ()
        rows = cur.execute(_NICHE[bool(after)], (member[0], limit, member[1], niche, *keys),
                           prepare=True)
        return list(map(_entry, rows))

    def home_page(self, viewer: uuid.UUID, after: PostKey | None, limit: int) -> list[Entry]:
        """Up to ``limit`` entries of all the viewer's niches below ``after``, newest first."""
        return self._run(lambda conn: self._home_page(conn, viewer, after, limit))

    def _home_page(self, conn: psycopg.Connection, viewer: uuid.UUID, after: PostKey | None,
                   limit: int) -> list[Entry]:
        keys = (after[0], after[1]) if after else ()
        rows = psycopg.RawCursor(conn).execute(_HOME[bool(after)], (viewer, limit, *keys),
                                               prepare=True)
        return list(map(_entry, rows))
