"""The worker's audience index in the feed database: ids, niches, members, blocks and posts.

Every method runs inside the caller's transaction (the projection batch's).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping

import psycopg

from kith.feed.domain import FeedPost, PostKey

Pair = tuple[int, int]  # (user_id, niche_id) or (blocker, blocked)
LOCK_BUCKETS = 256  # advisory locks per id space a batch may hold (see AudienceIndex.lock)
USERS, NICHES = 0x6B6601, 0x6B6602  # the two lock spaces (users first)


class AudienceIndex:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    # -- ids and locks ---------------------------------------------------------------------

    def resolve(self, uuids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Surrogate ids of users and niches, allocated on first sight."""
        if not uuids:
            return {}
        query = "SELECT uuid, id FROM feed_refs WHERE uuid = ANY(%s)"
        found: dict[uuid.UUID, int] = dict(self.conn.execute(query, (list(uuids),)).fetchall())
        # Sorted: workers inserting the same new ids concurrently cannot deadlock.
        if missing := sorted(set(uuids) - found.keys()):
            self.conn.execute("INSERT INTO feed_refs (uuid) SELECT unnest(%s::uuid[])"
                              " ON CONFLICT DO NOTHING", (missing,))
            found.update(self.conn.execute(query, (missing,)).fetchall())
        return found

    def lock(self, ids: Iterable[int], space: int = USERS) -> None:
        """Transaction-scoped locks on ``ids`` of one ``space`` (callers lock users before
        niches), taken in order. Ids share ``LOCK_BUCKETS`` locks per space, so a batch holds
        at most ``2 * LOCK_BUCKETS`` advisory locks whatever its size: Postgres's lock table
        (``max_locks_per_transaction`` times connections) cannot run out at
        production batch sizes."""
        ordered = sorted({i % LOCK_BUCKETS for i in ids})
        if ordered:
            self.conn.execute("SELECT count(pg_advisory_xact_lock(%s, k))"
                              " FROM unnest(%s::int[]) WITH ORDINALITY AS t(k, i)",
                              (space, ordered))

    def uuids(self, ids: Collection[int]) -> dict[int, uuid.UUID]:
        return dict(self.conn.execute("SELECT id, uuid FROM feed_refs WHERE id = ANY(%s)",
                                      (list(ids),)).fetchall())

    # -- niches and members ----------------------------------------------------------------

    def ensure_niches(self, niches: Collection[int]) -> None:
        if niches:
            self.conn.execute("INSERT INTO feed_niches (id) SELECT unnest(%s::bigint[])"
                              " ON CONFLICT DO NOTHING", (sorted(niches),))

    def archived(self, niches: Collection[int]) -> set[int]:
        if not niches:
            return set()
        rows = self.conn.execute("SELECT id FROM feed_niches WHERE archived AND id = ANY(%s)",
                                 (list(niches),))
        return {r[0] for r in rows}

    def members(self, niches: Collection[int]) -> dict[int, set[int]]:
        found: dict[int, set[int]] = {n: set() for n in niches}
        if not niches:
            return found
        for niche, users in self.conn.execute(
                "SELECT niche_id, array_agg(user_id) FROM feed_members WHERE niche_id = ANY(%s)"
                " GROUP BY niche_id", (list(niches),)):
            found[niche] = set(users)
        return found

    def niches_of(self, users: Collection[int]) -> dict[int, set[int]]:
        found: dict[int, set[int]] = defaultdict(set)
        if not users:
            return found
        for user, niche in self.conn.execute(
                "SELECT user_id, niche_id FROM feed_members WHERE user_id = ANY(%s)",
                (list(users),)):
            found[user].add(niche)
        return found

    def add_members(self, pairs: Collection[Pair]) -> None:
        if pairs:
            users, niches = zip(*pairs, strict=True)
            self.conn.execute(
                "INSERT INTO feed_members (user_id, niche_id)"
                " SELECT * FROM unnest(%s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
                (list(users), list(niches)))

    def remove_members(self, pairs: Collection[Pair]) -> None:
        if pairs:
            users, niches = zip(*pairs, strict=True)
            self.conn.execute(
                "DELETE FROM feed_members m USING unnest(%s::bigint[], %s::bigint[]) AS t(u, n)"
                " WHERE m.user_id = t.u AND m.niche_id = t.n", (list(users), list(niches)))

    def archive(self, niches: Collection[int]) -> None:
        if niches:
            self.conn.execute("UPDATE feed_niches SET archived = true WHERE id = ANY(%s)",
                              (list(niches),))

    # -- blocks ----------------------------------------------------------------------------

    def block_edges(self, edges: Collection[Pair]) -> set[Pair]:
        """Which of the directed ``(blocker, blocked)`` edges are recorded."""
        if not edges:
            return set()
        blockers, blocked = zip(*edges, strict=True)
        rows = self.conn.execute(
            "SELECT b.blocker, b.blocked FROM feed_blocks b"
            " JOIN unnest(%s::bigint[], %s::bigint[]) AS t(a, z)"
            " ON b.blocker = t.a AND b.blocked = t.z", (list(blockers), list(blocked)))
        return {(a, z) for a, z in rows}

    def set_blocks(self, add: Collection[Pair], remove: Collection[Pair]) -> None:
        if add:
            a, z = zip(*add, strict=True)
            self.conn.execute("INSERT INTO feed_blocks (blocker, blocked) SELECT * FROM"
                              " unnest(%s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
                              (list(a), list(z)))
        if remove:
            a, z = zip(*remove, strict=True)
            self.conn.execute(
                "DELETE FROM feed_blocks b USING unnest(%s::bigint[], %s::bigint[]) AS t(a, z)"
                " WHERE b.blocker = t.a AND b.blocked = t.z", (list(a), list(z)))

    def blocked_audience(self, niches: Collection[int]) -> set[Pair]:
        """``(user, niche)`` of members with a block either way with someone who posted there."""
        if not niches:
            return set()
        rows = self.conn.execute(
            "SELECT m.user_id, m.niche_id FROM feed_members m"
            " JOIN feed_blocks b ON b.blocker = m.user_id"
            " WHERE m.niche_id = ANY(%(n)s) AND EXISTS (SELECT 1 FROM feed_posts p"
            "   WHERE p.author_id = b.blocked AND p.niche_id = m.niche_id)"
            " UNION"
            " SELECT m.user_id, m.niche_id FROM feed_members m"
            " JOIN feed_blocks b ON b.blocked = m.user_id"
            " WHERE m.niche_id = ANY(%(n)s) AND EXISTS (SELECT 1 FROM feed_posts p"
            "   WHERE p.author_id = b.blocker AND p.niche_id = m.niche_id)",
            {"n": list(niches)})
        return {(u, n) for u, n in rows}

    # -- posts -----------------------------------------------------------------------------

    def posts(self, post_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, tuple[FeedPost, bool]]:
        """Known posts among ``post_ids``, each with its deleted flag."""
        if not post_ids:
            return {}
        rows = self.conn.execute(
            "SELECT post_id, niche_id, author_id, created_at_ms, deleted FROM feed_posts"
            " WHERE post_id = ANY(%s)", (list(post_ids),))
        return {p: (FeedPost(p, n, a, ts), d) for p, n, a, ts, d in rows}

    def add_posts(self, posts: Collection[tuple[FeedPost, bool]]) -> None:
        """Record new posts (each published once: the runner drops redeliveries)."""
        if not posts:
            return
        with self.conn.cursor() as cur, cur.copy(
                "COPY feed_posts (post_id, niche_id, author_id, created_at_ms, deleted)"
                " FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "int8", "int8", "int8", "bool"])
            for p, deleted in posts:
                copy.write_row((p.post_id, p.niche_id, p.author_id, p.created_at_ms, deleted))

    def mark_deleted(self, post_ids: Collection[uuid.UUID]) -> None:
        if post_ids:
            self.conn.execute("UPDATE feed_posts SET deleted = true WHERE post_id = ANY(%s)",
                              (list(post_ids),))

    def shift_floors(self, deltas: Mapping[int, int], feed_size: int
                     ) -> dict[int, tuple[PostKey | None, PostKey | None]]:
        """Apply live-post count deltas; return each niche's ``(old floor, new floor)``."""
        if not deltas:
            return {}
        niches = list(deltas)
        rows = self.conn.execute(
            "UPDATE feed_niches n SET live_posts = n.live_posts + t.d"
            " FROM unnest(%s::bigint[], %s::int[]) AS t(id, d) WHERE n.id = t.id"
            " RETURNING n.id, n.live_posts, n.floor_created_at_ms, n.floor_post_id",
            (niches, [deltas[n] for n in niches])).fetchall()
        old = {n: (ts, p) if ts is not None else None for n, _, ts, p in rows}
        new: dict[int, PostKey | None] = dict.fromkeys(old)
        full = [n for n, live, _, _ in rows if live >= feed_size]
        if full:  # the F-th newest live post; below F live posts there is no floor
            for n, ts, p in self.conn.execute(
                    "SELECT n.id, f.created_at_ms, f.post_id FROM unnest(%s::bigint[]) AS n(id)"
                    " CROSS JOIN LATERAL (SELECT p.created_at_ms, p.post_id FROM feed_posts p"
                    "   WHERE p.niche_id = n.id AND NOT p.deleted"
                    "   ORDER BY p.created_at_ms DESC, p.post_id DESC OFFSET %s LIMIT 1) f",
                    (full, feed_size - 1)):
                new[n] = (ts, p)
        moved = [n for n in niches if new[n] != old[n]]
        if moved:
            self.conn.execute(
                "UPDATE feed_niches n SET floor_created_at_ms = t.ts, floor_post_id = t.p"
                " FROM unnest(%s::bigint[], %s::bigint[], %s::uuid[]) AS t(id, ts, p)"
                " WHERE n.id = t.id",
                (moved, [f[0] if (f := new[n]) else None for n in moved],
                 [f[1] if (f := new[n]) else None for n in moved]))
        return {n: (old[n], new[n]) for n in niches}

    def live_span(self, niche: int, lo: PostKey | None, hi: PostKey | None,
                  exclude: Collection[uuid.UUID]) -> list[FeedPost]:
        """Live posts of ``niche`` with ``lo <= key < hi`` (``None``: open), minus ``exclude``."""
        where = ["niche_id = %s", "NOT deleted"]
        params: list[object] = [niche]
        if lo is not None:
            where.append("(created_at_ms, post_id) >= (%s, %s)")
            params += lo
        if hi is not None:
            where.append("(created_at_ms, post_id) < (%s, %s)")
            params += hi
        rows = self.conn.execute(
            "SELECT post_id, niche_id, author_id, created_at_ms FROM feed_posts WHERE "
            + " AND ".join(where), params)
        skip = set(exclude)
        return [FeedPost(p, n, a, ts) for p, n, a, ts in rows if p not in skip]
