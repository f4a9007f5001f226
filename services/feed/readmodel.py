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
_AFTER = " AND (e.created_at_ms, e.post_id) < (%(ts)s, %(post)s)"


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
        params = {"viewer": viewer, "niche": niche, "limit": limit,
                  "ts": after[0] if after else None, "post": after[1] if after else None}
        member = conn.execute(
            "SELECT v.id, n.id FROM feed_refs v, feed_refs n, feed_members m"
            " WHERE v.uuid = %(viewer)s AND n.uuid = %(niche)s"
            " AND m.niche_id = n.id AND m.user_id = v.id", params).fetchone()
        if member is None:
            return None
        params.update(viewer_id=member[0], niche_id=member[1])
        rows = conn.execute(
            "SELECT e.created_at_ms, e.post_id::text, %(niche)s::uuid::text, a.uuid::text"
            " FROM feed_entries e"
            " JOIN feed_refs a ON a.id = e.author_id"
            " WHERE e.user_id = %(viewer_id)s AND e.niche_id = %(niche_id)s"
            + (_AFTER if after else "") + _VISIBLE
            + " ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT %(limit)s", params)
        return list(map(_entry, rows))

    def home_page(self, viewer: uuid.UUID, after: PostKey | None, limit: int) -> list[Entry]:
        """Up to ``limit`` entries of all the viewer's niches below ``after``, newest first."""
        return self._run(lambda conn: self._home_page(conn, viewer, after, limit))

    def _home_page(self, conn: psycopg.Connection, viewer: uuid.UUID, after: PostKey | None,
                   limit: int) -> list[Entry]:
        params = {"viewer": viewer, "limit": limit,
                  "ts": after[0] if after else None, "post": after[1] if after else None}
        rows = conn.execute(
            "SELECT e.created_at_ms, e.post_id::text, n.uuid::text, a.uuid::text"
            " FROM feed_refs v JOIN feed_members m ON m.user_id = v.id"
            " CROSS JOIN LATERAL (SELECT * FROM feed_entries e"
            "   WHERE e.user_id = m.user_id AND e.niche_id = m.niche_id"
            + (_AFTER if after else "") + _VISIBLE
            + "   ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT %(limit)s) e"
            " JOIN feed_refs n ON n.id = e.niche_id JOIN feed_refs a ON a.id = e.author_id"
            " WHERE v.uuid = %(viewer)s"
            " ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT %(limit)s", params)
        return list(map(_entry, rows))
