"""Page reads run as prepared statements through libpq and answer what the plain SQL answers.

``FeedReader`` executes its statements with ``PQexecPrepared`` (no psycopg cursor) and
reads each page as one text value. The oracle here is the page SQL as it was before,
run through psycopg: for every viewer, home and niche pages, walked page by page with
the cursor, with blocks in both directions, must be the same entries in the same order.
"""

from __future__ import annotations

import random
import uuid

import psycopg
import pytest

from kith.feed.readmodel import Entry, FeedReader, read_pool

_VISIBLE = (" AND NOT EXISTS (SELECT 1 FROM feed_blocks b"
            " WHERE (b.blocker = e.user_id AND b.blocked = e.author_id)"
            " OR (b.blocker = e.author_id AND b.blocked = e.user_id))")
_AFTER = " AND (e.created_at_ms, e.post_id) < (%(ts)s, %(post)s)"


def _oracle_home(conn: psycopg.Connection, viewer: uuid.UUID, after: tuple[int, uuid.UUID] | None,
                 limit: int) -> list[Entry]:
    rows = conn.execute(
        "SELECT e.created_at_ms, e.post_id::text, n.uuid::text, a.uuid::text"
        " FROM feed_refs v JOIN feed_members m ON m.user_id = v.id"
        " CROSS JOIN LATERAL (SELECT * FROM feed_entries e"
        "   WHERE e.user_id = m.user_id AND e.niche_id = m.niche_id"
        + (_AFTER if after else "") + _VISIBLE
        + "   ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT %(limit)s) e"
        " JOIN feed_refs n ON n.id = e.niche_id JOIN feed_refs a ON a.id = e.author_id"
        " WHERE v.uuid = %(viewer)s"
        " ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT %(limit)s",
        {"viewer": viewer, "limit": limit, "ts": after[0] if after else None,
         "post": after[1] if after else None})
    return [Entry(*row) for row in rows]


def _oracle_niche(conn: psycopg.Connection, viewer: uuid.UUID, niche: uuid.UUID,
                  after: tuple[int, uuid.UUID] | None, limit: int) -> list[Entry] | None:
    member = conn.execute(
        "SELECT v.id, n.id FROM feed_refs v, feed_refs n, feed_members m"
        " WHERE v.uuid = %s AND n.uuid = %s AND m.niche_id = n.id AND m.user_id = v.id",
        (viewer, niche)).fetchone()
    if member is None:
        return None
    rows = conn.execute(
        "SELECT e.created_at_ms, e.post_id::text, %(niche)s::uuid::text, a.uuid::text"
        " FROM feed_entries e JOIN feed_refs a ON a.id = e.author_id"
        " WHERE e.user_id = %(viewer_id)s AND e.niche_id = %(niche_id)s"
        + (_AFTER if after else "") + _VISIBLE
        + " ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT %(limit)s",
        {"niche": niche, "viewer_id": member[0], "niche_id": member[1], "limit": limit,
         "ts": after[0] if after else None, "post": after[1] if after else None})
    return [Entry(*row) for row in rows]


@pytest.fixture
def world(feed_dsn: str) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """8 users in 3 niches, 60 posts fanned out (some at the same millisecond), 3 blocks."""
    rng = random.Random(17)
    users = [uuid.uuid4() for _ in range(8)]
    niches = [uuid.uuid4() for _ in range(3)]
    with psycopg.connect(feed_dsn) as conn:
        ref = {u: conn.execute("INSERT INTO feed_refs (uuid) VALUES (%s) RETURNING id",
                               (u,)).fetchone()[0] for u in users + niches}  # type: ignore[index]
        members = {n: rng.sample(users, 5) for n in niches}
        for n, ms in members.items():
            for m in ms:
                conn.execute("INSERT INTO feed_members VALUES (%s, %s)", (ref[n], ref[m]))
        for i in range(60):
            niche = rng.choice(niches)
            author = rng.choice(members[niche])
            created = 1_760_000_000_000 + (i // 3) * 1000  # three posts per millisecond
            post = uuid.uuid4()
            for m in members[niche]:
                conn.execute("INSERT INTO feed_entries VALUES (%s, %s, %s, %s, %s)",
                             (ref[m], ref[niche], created, post, ref[author]))
        for blocker, blocked in ((0, 1), (2, 3), (4, 0)):
            conn.execute("INSERT INTO feed_blocks VALUES (%s, %s)",
                         (ref[users[blocker]], ref[users[blocked]]))
    return users, niches


def test_every_page_is_the_plain_sqls_page(feed_dsn: str, world: tuple[list[uuid.UUID],
                                                                       list[uuid.UUID]]) -> None:
    users, niches = world
    pool = read_pool(feed_dsn, max_size=2)
    reader = FeedReader(pool)
    pages = 0
    try:
        with psycopg.connect(feed_dsn, autocommit=True) as oracle:
            for viewer in [*users, uuid.uuid4()]:
                for limit in (1, 7, 21):
                    after = None
                    while True:
                        page = reader.home_page(viewer, after, limit)
                        assert page == _oracle_home(oracle, viewer, after, limit)
                        pages += 1
                        if len(page) < limit:
                            break
                        after = page[-1].key
                    for niche in [*niches, uuid.uuid4()]:
                        after = None
                        while True:
                            got = reader.niche_page(viewer, niche, after, limit)
                            assert got == _oracle_niche(oracle, viewer, niche, after, limit)
                            pages += 1
                            if got is None or len(got) < limit:
                                break
                            after = got[-1].key
    finally:
        pool.close()
    assert pages > 100


def test_a_connection_that_lost_its_prepared_statements_prepares_them_again(
        feed_dsn: str, world: tuple[list[uuid.UUID], list[uuid.UUID]]) -> None:
    users, niches = world
    pool = read_pool(feed_dsn, max_size=2)
    reader = FeedReader(pool)
    try:
        before = reader.home_page(users[0], None, 21)
        assert before
        with pool.connection() as one, pool.connection() as two:  # every pooled connection
            prepared = [name for conn in (one, two) for (name,) in conn.execute(
                "SELECT name FROM pg_prepared_statements")]
            assert "kith_feed_home" in prepared
            for conn in (one, two):
                conn.execute("DEALLOCATE ALL")  # as a pooler's reset or DISCARD ALL would
        assert reader.home_page(users[0], None, 21) == before
        assert any(reader.niche_page(users[0], niche, None, 21) for niche in niches)
    finally:
        pool.close()


def test_a_failing_statement_raises_psycopgs_error(feed_dsn: str) -> None:
    pool = read_pool(feed_dsn, max_size=2)
    try:
        with pool.connection() as conn:
            conn.execute("DROP TABLE feed_blocks")
        with pytest.raises(psycopg.errors.UndefinedTable):
            FeedReader(pool).home_page(uuid.uuid4(), None, 21)
    finally:
        pool.close()
