"""The post read model: posts, comments and reactions, written inline with each append.

Command handlers lock the post's row first (:func:`lock_live`), then load the
stream, decide, :func:`record` the events here and append them, all in one
transaction; so the tables always reflect exactly the committed events.
Queries return plain views; who may see them is the application's concern.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from kith.post.events import (
    CommentAdded,
    CommentDeleted,
    PostAnswered,
    PostDeleted,
    PostEdited,
    PostEvent,
    PostPublished,
    ReactionAdded,
    ReactionRemoved,
)
from kith.post.typed import HIGHLIGHT, MOMENT, TEXT, Body

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
AUTHOR_LOCK_SPACE = 0x706F7374  # "post": advisory locks (space, hashtext(user id))


def to_datetime(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def to_ms(at: datetime | None) -> int:
    return 0 if at is None else (at - _EPOCH) // _MS


@dataclass(frozen=True)
class PostHeader:
    """What authorising a command on a live post needs."""

    post_id: str
    niche_id: str
    author_id: str


@dataclass(frozen=True)
class PostView:
    post_id: str
    niche_id: str
    author_id: str
    text: str
    created_at_ms: int
    edited_at_ms: int  # 0 if never edited
    reactions: dict[str, int]
    my_reactions: list[str]
    comment_count: int
    body: Body = field(default_factory=Body)
    answer: tuple[str, str] | None = None  # an ask's answering (comment_id, comment author)


@dataclass(frozen=True)
class CommentView:
    comment_id: str
    post_id: str
    author_id: str
    text: str
    created_at_ms: int
    seq: int


# -- writes -----------------------------------------------------------------------------------

def record(conn: psycopg.Connection, first_version: int, events: Sequence[PostEvent]) -> None:
    """Write the effect of ``events``, to be appended as versions ``first_version``, … ."""
    for version, event in enumerate(events, start=first_version):
        _WRITERS[type(event)](conn, version, event)
    if first_version > 1:
        conn.execute("UPDATE posts SET version = %s WHERE id = %s",
                     (first_version + len(events) - 1, events[0].post_id))


def _published(conn: psycopg.Connection, version: int, e: PostPublished) -> None:
    conn.execute(
        "INSERT INTO posts (id, niche_id, author_id, text, created_at, version, type, typed)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (e.post_id, e.niche_id, e.author_id, e.text, to_datetime(e.created_at_ms), version,
         e.type or TEXT, e.typed))
    if e.type not in ("", TEXT):
        _typed_rows(conn, e.post_id, e.niche_id, e.author_id,
                    Body.from_event(e.type, e.text, e.typed), e.created_at_ms)


def _typed_rows(conn: psycopg.Connection, post_id: str, niche_id: str, author_id: str,
                body: Body, created_at_ms: int) -> None:
    """The shelf's and upcoming's rows of a highlight or a moment (replaced on each edit)."""
    conn.execute("DELETE FROM highlights WHERE post_id = %s", (post_id,))
    conn.execute("DELETE FROM moments WHERE post_id = %s", (post_id,))
    if body.type == HIGHLIGHT and body.book is not None:
        conn.execute(
            "INSERT INTO highlights (post_id, niche_id, author_id, book_key, title, author, isbn,"
            " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (post_id, niche_id, author_id, body.book.key, body.book.title, body.book.author,
             body.book.isbn, to_datetime(created_at_ms)))
    elif body.type == MOMENT and body.moment is not None:
        conn.execute("INSERT INTO moments (post_id, niche_id, author_id, kind, date)"
                     " VALUES (%s, %s, %s, %s, %s)",
                     (post_id, niche_id, author_id, body.moment.kind, body.moment.date))


def _edited(conn: psycopg.Connection, version: int, e: PostEdited) -> None:
    conn.execute("UPDATE posts SET text = %s, edited_at = %s,"
                 " typed = CASE WHEN type = 'text' THEN '' ELSE %s END WHERE id = %s",
                 (e.text, to_datetime(e.edited_at_ms), e.typed, e.post_id))
    row = conn.execute("SELECT type, niche_id, author_id, created_at FROM posts WHERE id = %s",
                       (e.post_id,)).fetchone()
    if row is not None and row[0] != TEXT:
        _typed_rows(conn, e.post_id, str(row[1]), str(row[2]),
                    Body.from_event(row[0], e.text, e.typed), to_ms(row[3]))


def _answered(conn: psycopg.Connection, version: int, e: PostAnswered) -> None:
    conn.execute("UPDATE posts SET answer_comment_id = %s, answer_author_id = %s WHERE id = %s",
                 (e.comment_id, e.comment_author_id, e.post_id))


def _deleted(conn: psycopg.Connection, version: int, e: PostDeleted) -> None:
    # A deleted post is never read again: keep the tombstone, drop the content.
    conn.execute("UPDATE posts SET text = '', typed = '', deleted_at = %s, comment_count = 0,"
                 " answer_comment_id = NULL, answer_author_id = NULL WHERE id = %s",
                 (to_datetime(e.deleted_at_ms), e.post_id))
    for table in ("comments", "reactions", "reaction_counts", "highlights", "moments"):
        conn.execute(f"DELETE FROM {table} WHERE post_id = %s", (e.post_id,))


def _commented(conn: psycopg.Connection, version: int, e: CommentAdded) -> None:
    conn.execute(
        "INSERT INTO comments (post_id, seq, id, author_id, text, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (e.post_id, version, e.comment_id, e.author_id, e.text, to_datetime(e.created_at_ms)))
    conn.execute("UPDATE posts SET comment_count = comment_count + 1 WHERE id = %s",
                 (e.post_id,))


def _comment_deleted(conn: psycopg.Connection, version: int, e: CommentDeleted) -> None:
    conn.execute("DELETE FROM comments WHERE id = %s", (e.comment_id,))
    conn.execute("UPDATE posts SET comment_count = comment_count - 1,"
                 " answer_comment_id = CASE WHEN answer_comment_id = %(c)s THEN NULL"
                 "   ELSE answer_comment_id END,"
                 " answer_author_id = CASE WHEN answer_comment_id = %(c)s THEN NULL"
                 "   ELSE answer_author_id END"
                 " WHERE id = %(p)s", {"c": e.comment_id, "p": e.post_id})


def _reacted(conn: psycopg.Connection, version: int, e: ReactionAdded) -> None:
    conn.execute("INSERT INTO reactions (post_id, user_id, kind) VALUES (%s, %s, %s)",
                 (e.post_id, e.user_id, e.kind))
    conn.execute("INSERT INTO reaction_counts (post_id, kind, n) VALUES (%s, %s, 1)"
                 " ON CONFLICT (post_id, kind) DO UPDATE SET n = reaction_counts.n + 1",
                 (e.post_id, e.kind))


def _unreacted(conn: psycopg.Connection, version: int, e: ReactionRemoved) -> None:
    conn.execute("DELETE FROM reactions WHERE post_id = %s AND user_id = %s AND kind = %s",
                 (e.post_id, e.user_id, e.kind))
    conn.execute(
        "WITH gone AS (DELETE FROM reaction_counts WHERE post_id = %(p)s AND kind = %(k)s"
        " AND n = 1) UPDATE reaction_counts SET n = n - 1"
        " WHERE post_id = %(p)s AND kind = %(k)s AND n > 1",
        {"p": e.post_id, "k": e.kind})


_WRITERS: dict[type, Callable[[psycopg.Connection, int, Any], None]] = {
    PostPublished: _published,
    PostEdited: _edited,
    PostDeleted: _deleted,
    CommentAdded: _commented,
    CommentDeleted: _comment_deleted,
    ReactionAdded: _reacted,
    ReactionRemoved: _unreacted,
    PostAnswered: _answered,
}


# -- locks ------------------------------------------------------------------------------------

def lock_live(conn: psycopg.Connection, post_id: str) -> bool:
    """Lock a live post's row for the transaction: commands on one post run one at a time."""
    return conn.execute("SELECT 1 FROM posts WHERE id = %s AND deleted_at IS NULL FOR UPDATE",
                        (post_id,)).fetchone() is not None


def lock_authors(conn: psycopg.Connection, user_ids: Sequence[str], exclusive: bool) -> None:
    """Serialise publishing (shared) against erasing an account's posts (exclusive).

    Taken before any append, in a stable order, so neither side can deadlock.
    """
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    for user_id in sorted(user_ids):
        conn.execute(f"SELECT {fn}(%s, hashtext(%s))", (AUTHOR_LOCK_SPACE, user_id))


def author_deleted(conn: psycopg.Connection, user_id: str) -> bool:
    return conn.execute("SELECT 1 FROM deleted_authors WHERE user_id = %s",
                        (user_id,)).fetchone() is not None


def mark_authors_deleted(conn: psycopg.Connection, user_ids: Sequence[str]) -> None:
    conn.execute("INSERT INTO deleted_authors (user_id) SELECT unnest(%s::uuid[])"
                 " ON CONFLICT DO NOTHING", (list(user_ids),))


def lock_posts_touched_by(conn: psycopg.Connection, user_ids: Sequence[str]) -> list[str]:
    """The live posts that ``user_ids`` wrote, commented on or reacted to; rows locked."""
    rows = conn.execute(
        "SELECT id FROM posts WHERE deleted_at IS NULL AND id IN ("
        "  SELECT id FROM posts WHERE author_id = ANY(%(u)s::uuid[])"
        "  UNION SELECT post_id FROM comments WHERE author_id = ANY(%(u)s::uuid[])"
        "  UNION SELECT post_id FROM reactions WHERE user_id = ANY(%(u)s::uuid[]))"
        " ORDER BY id FOR UPDATE", {"u": list(user_ids)}).fetchall()
    return [str(r[0]) for r in rows]


# -- queries ----------------------------------------------------------------------------------

def header(conn: psycopg.Connection, post_id: str) -> PostHeader | None:
    """The niche and author of a live post; None if it is unknown or deleted."""
    row = conn.execute("SELECT niche_id, author_id FROM posts"
                       " WHERE id = %s AND deleted_at IS NULL", (post_id,)).fetchone()
    return None if row is None else PostHeader(post_id, str(row[0]), str(row[1]))


def posts(conn: psycopg.Connection, post_ids: Sequence[str], viewer_id: str) -> list[PostView]:
    """The live posts among ``post_ids`` with their counts and the viewer's reactions.

    One statement, each part served by a primary key: the posts by id, the
    counts by ``(post_id, kind)``, the viewer's reactions by ``(post_id, user_id)``.
    """
    rows = conn.execute(
        "SELECT p.id, p.niche_id, p.author_id, p.text, p.created_at, p.edited_at,"
        " p.comment_count,"
        " (SELECT coalesce(jsonb_object_agg(c.kind, c.n), '{}'::jsonb)"
        "    FROM reaction_counts c WHERE c.post_id = p.id),"
        " ARRAY(SELECT r.kind FROM reactions r"
        "    WHERE r.post_id = p.id AND r.user_id = %(viewer)s ORDER BY r.kind),"
        " p.type, p.typed, p.answer_comment_id, p.answer_author_id"
        " FROM posts p WHERE p.id = ANY(%(ids)s::uuid[]) AND p.deleted_at IS NULL",
        {"ids": list(post_ids), "viewer": viewer_id}).fetchall()
    return [PostView(str(r[0]), str(r[1]), str(r[2]), r[3], to_ms(r[4]), to_ms(r[5]), r[7],
                     list(r[8]), r[6], Body.from_event(r[9], r[3], r[10]),
                     (str(r[11]), str(r[12])) if r[11] else None) for r in rows]


def comments(conn: psycopg.Connection, post_id: str, after_seq: int,
             limit: int) -> list[CommentView]:
    """Comments of a post after ``after_seq``, oldest first."""
    rows = conn.execute(
        "SELECT id, author_id, text, created_at, seq FROM comments"
        " WHERE post_id = %s AND seq > %s ORDER BY seq LIMIT %s",
        (post_id, after_seq, limit)).fetchall()
    return [CommentView(str(r[0]), post_id, str(r[1]), r[2], to_ms(r[3]), r[4]) for r in rows]


@dataclass(frozen=True)
class ShelfRow:
    title: str
    author: str
    isbn: str
    highlights: int
    last_highlight_ms: int


def shelf(conn: psycopg.Connection, niche_id: str, hidden_authors: Sequence[str],
          limit: int) -> list[ShelfRow]:
    """The niche's highlighted books, most recent highlight first (the newest title wins)."""
    rows = conn.execute(
        "SELECT (array_agg(title ORDER BY created_at DESC))[1],"
        " (array_agg(author ORDER BY created_at DESC))[1], max(isbn), count(*), max(created_at)"
        " FROM highlights WHERE niche_id = %s AND NOT author_id = ANY(%s::uuid[])"
        " GROUP BY book_key ORDER BY max(created_at) DESC, book_key LIMIT %s",
        (niche_id, list(hidden_authors), limit)).fetchall()
    return [ShelfRow(r[0], r[1], r[2], r[3], to_ms(r[4])) for r in rows]


def highlight_authors(conn: psycopg.Connection, niche_id: str) -> list[str]:
    return [str(r[0]) for r in conn.execute(
        "SELECT DISTINCT author_id FROM highlights WHERE niche_id = %s", (niche_id,))]


@dataclass(frozen=True)
class MomentRow:
    post_id: str
    niche_id: str
    author_id: str
    kind: str
    date: str


def moments(conn: psycopg.Connection, niche_ids: Sequence[str],
            kinds: Sequence[str]) -> list[MomentRow]:
    rows = conn.execute(
        "SELECT post_id, niche_id, author_id, kind, date FROM moments"
        " WHERE niche_id = ANY(%s::uuid[]) AND kind = ANY(%s::text[])"
        " ORDER BY date, post_id LIMIT 5000", (list(niche_ids), list(kinds))).fetchall()
    return [MomentRow(str(r[0]), str(r[1]), str(r[2]), r[3], r[4].isoformat()) for r in rows]
