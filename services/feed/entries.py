"""Writes to ``feed_entries``: binary COPY on the hot path, set-based statements otherwise.

Every method runs inside the caller's transaction (the projection batch's).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable

import psycopg

from kith.feed.domain import FeedPost

Pair = tuple[int, int]  # (user_id, niche_id)
COPY_SQL = ("COPY {table} (user_id, niche_id, created_at_ms, post_id, author_id)"
            " FROM STDIN (FORMAT BINARY)")
COPY_TYPES = ["int8", "int8", "int8", "uuid", "int8"]
Row = tuple[int, int, int, uuid.UUID, int]


def copy_rows(conn: psycopg.Connection, rows: Iterable[Row], table: str = "feed_entries"
              ) -> int:
    """Binary COPY of ``(user, niche, created_at_ms, post, author)`` rows; returns the count."""
    count = 0
    with conn.cursor() as cur, cur.copy(COPY_SQL.format(table=table)) as copy:
        copy.set_types(COPY_TYPES)
        write = copy.write_row
        for row in rows:
            write(row)
            count += 1
    return count


def deliveries(users: Iterable[int], posts: Iterable[FeedPost]) -> Iterable[Row]:
    """The entries that deliver each post to each user."""
    users = list(users)
    for p in posts:
        for user in users:
            yield (user, p.niche_id, p.created_at_ms, p.post_id, p.author_id)


def purge(conn: psycopg.Connection, pairs: Collection[Pair]) -> None:
    """Empty feed(u, n) for each pair: a key-prefix delete."""
    if pairs:
        users, niches = zip(*pairs, strict=True)
        conn.execute(
            "DELETE FROM feed_entries f USING unnest(%s::bigint[], %s::bigint[]) AS t(u, n)"
            " WHERE f.user_id = t.u AND f.niche_id = t.n", (list(users), list(niches)))


def retract(conn: psycopg.Connection, users: Collection[int], posts: Collection[FeedPost]
            ) -> None:
    """Remove each post from each user's feed: one primary-key probe per entry."""
    if not users or not posts:
        return
    conn.execute(
        "DELETE FROM feed_entries f"
        " USING unnest(%s::bigint[]) AS u(id),"
        "       unnest(%s::bigint[], %s::bigint[], %s::uuid[]) AS p(n, ts, id)"
        " WHERE f.user_id = u.id AND f.niche_id = p.n AND f.created_at_ms = p.ts"
        " AND f.post_id = p.id",
        (list(users), [p.niche_id for p in posts], [p.created_at_ms for p in posts],
         [p.post_id for p in posts]))


def reconcile(conn: psycopg.Connection, pairs: Collection[Pair], feed_size: int) -> int:
    """Make feed(u, n) exactly the rule's for each pair, writing only the difference.

    Reads the audience index as it stands; used for joins (back-fill), block changes and
    members with blocks towards a niche's authors. Returns the entries added.
    """
    if not pairs:
        return 0
    users, niches = zip(*pairs, strict=True)
    cur = conn.execute(
        "WITH pairs AS (SELECT * FROM unnest(%(u)s::bigint[], %(n)s::bigint[]) AS t(u, n)),"
        " want AS ("
        "  SELECT pr.u AS user_id, pr.n AS niche_id, w.created_at_ms, w.post_id, w.author_id"
        "  FROM pairs pr CROSS JOIN LATERAL ("
        "    SELECT p.created_at_ms, p.post_id, p.author_id FROM feed_posts p"
        "    WHERE p.niche_id = pr.n AND NOT p.deleted AND NOT EXISTS ("
        "      SELECT 1 FROM feed_blocks b"
        "      WHERE (b.blocker = pr.u AND b.blocked = p.author_id)"
        "         OR (b.blocker = p.author_id AND b.blocked = pr.u))"
        "    ORDER BY p.created_at_ms DESC, p.post_id DESC LIMIT %(f)s) w),"
        " gone AS ("
        "  DELETE FROM feed_entries f USING pairs pr"
        "  WHERE f.user_id = pr.u AND f.niche_id = pr.n AND NOT EXISTS ("
        "    SELECT 1 FROM want w WHERE w.user_id = f.user_id AND w.niche_id = f.niche_id"
        "    AND w.created_at_ms = f.created_at_ms AND w.post_id = f.post_id))"
        " INSERT INTO feed_entries (user_id, niche_id, created_at_ms, post_id, author_id)"
        " SELECT * FROM want ON CONFLICT DO NOTHING",
        {"u": list(users), "n": list(niches), "f": feed_size})
    return cur.rowcount
