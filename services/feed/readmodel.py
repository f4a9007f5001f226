"""Feed queries over ``feed_entries``, re-checking membership and blocks at read time.

The home feed merges the viewer's niches: one bounded index range per niche
(``LIMIT`` each), then the newest of those — the key's single index serves it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import psycopg
import psycopg.errors
from psycopg.pq import ConnStatus, DiagnosticField, ExecStatus
from psycopg_pool import ConnectionPool

from kith.feed.domain import PostKey


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


T = TypeVar("T")


_VISIBLE = (" AND NOT EXISTS (SELECT 1 FROM feed_blocks b"
            " WHERE (b.blocker = e.user_id AND b.blocked = e.author_id)"
            " OR (b.blocker = e.author_id AND b.blocked = e.user_id))")


def _after(ts: int) -> str:
    """Entries below the cursor (parameters ``$ts``: created_at_ms, ``$ts + 1``: post id)."""
    return f" AND (e.created_at_ms, e.post_id) < (${ts}::bigint, ${ts + 1}::uuid)"


_PAGE = ("SELECT string_agg(concat_ws(' ', p.created_at_ms, p.post_id, p.niche, p.author), ' '"
         " ORDER BY p.created_at_ms DESC, p.post_id DESC) FROM ({}) p")
"""A page as one text value, ``created_at_ms post niche author`` per entry, newest first
(NULL for none): one value to read and split instead of four per row."""


def _home_sql(after: bool) -> str:
    """$1 viewer, $2 limit[, $3 created_at_ms, $4 post id]: the viewer's page (:data:`_PAGE`)."""
    return _PAGE.format(
        "SELECT e.created_at_ms, e.post_id, n.uuid AS niche, a.uuid AS author"
        " FROM feed_refs v JOIN feed_members m ON m.user_id = v.id"
        " CROSS JOIN LATERAL (SELECT * FROM feed_entries e"
        "   WHERE e.user_id = m.user_id AND e.niche_id = m.niche_id"
        + (_after(3) if after else "") + _VISIBLE
        + "   ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT $2::bigint) e"
        " JOIN feed_refs n ON n.id = e.niche_id JOIN feed_refs a ON a.id = e.author_id"
        " WHERE v.uuid = $1::uuid"
        " ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT $2::bigint")


# $1 viewer, $2 niche: the viewer's and the niche's ids, if the viewer is a member.
_MEMBER_SQL = ("SELECT v.id, n.id FROM feed_refs v, feed_refs n, feed_members m"
               " WHERE v.uuid = $1::uuid AND n.uuid = $2::uuid"
               " AND m.niche_id = n.id AND m.user_id = v.id")


def _niche_sql(after: bool) -> str:
    """$1 viewer's id, $2 niche's id, $3 niche, $4 limit[, $5 created_at_ms, $6 post id]: the
    viewer's page of the niche (:data:`_PAGE`)."""
    return _PAGE.format(
        "SELECT e.created_at_ms, e.post_id, $3::uuid AS niche, a.uuid AS author"
        " FROM feed_entries e"
        " JOIN feed_refs a ON a.id = e.author_id"
        " WHERE e.user_id = $1::bigint AND e.niche_id = $2::bigint"
        + (_after(5) if after else "") + _VISIBLE
        + " ORDER BY e.created_at_ms DESC, e.post_id DESC LIMIT $4::bigint")


class Statement:
    """A read run as a named prepared statement through libpq (``PQexecPrepared``, text
    parameters and rows), without psycopg's cursor: a page's SQL costs its round trip and
    little else. Prepared on a connection the first time it runs there (the server says
    it does not know the name), so pooled connections, old and new, need no set-up."""

    def __init__(self, name: str, sql: str) -> None:
        self.name = name.encode()
        self.sql = sql.encode()

    def run(self, conn: psycopg.Connection, params: Sequence[bytes]) -> list[tuple[Any, ...]]:
        """The rows (each value as PostgreSQL's text, ``None`` for NULL); a failure raises
        psycopg's error for it (:class:`psycopg.OperationalError` for a broken connection)."""
        pgconn = conn.pgconn
        result = pgconn.exec_prepared(self.name, params)
        if result.status != ExecStatus.TUPLES_OK \
                and result.error_field(DiagnosticField.SQLSTATE) == _UNKNOWN_STATEMENT:
            prepared = pgconn.prepare(self.name, self.sql)
            if prepared.status != ExecStatus.COMMAND_OK:
                raise _error(conn, prepared)
            result = pgconn.exec_prepared(self.name, params)
        if result.status != ExecStatus.TUPLES_OK:
            raise _error(conn, result)
        value = result.get_value
        width = range(result.nfields)
        return [tuple(value(row, col) for col in width) for row in range(result.ntuples)]


_UNKNOWN_STATEMENT = b"26000"  # invalid_sql_statement_name: not prepared on this connection


def _error(conn: psycopg.Connection, result: Any) -> psycopg.Error:
    if conn.pgconn.status != ConnStatus.OK:
        return psycopg.OperationalError(result.get_error_message(conn.info.encoding))
    return psycopg.errors.error_from_result(result, conn.info.encoding)


_HOME = (Statement("kith_feed_home", _home_sql(False)),
         Statement("kith_feed_home_after", _home_sql(True)))
_MEMBER = Statement("kith_feed_member", _MEMBER_SQL)
_NICHE = (Statement("kith_feed_niche", _niche_sql(False)),
          Statement("kith_feed_niche_after", _niche_sql(True)))


def _text(value: object) -> bytes:
    return str(value).encode()


def _entries(rows: list[tuple[Any, ...]]) -> list[Entry]:
    """The entries of a :data:`_PAGE` result."""
    page = rows[0][0]
    if page is None:
        return []
    words = iter(page.decode().split(" "))
    return [Entry(int(ts), post, niche, author)
            for ts, post, niche, author in zip(words, words, words, words, strict=True)]


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
        niche_text = _text(niche)
        member = _MEMBER.run(conn, (_text(viewer), niche_text))
        if not member:
            return None
        viewer_id, niche_id = member[0]
        params = [viewer_id, niche_id, niche_text, _text(limit)]
        if after:
            params += (_text(after[0]), _text(after[1]))
        return _entries(_NICHE[bool(after)].run(conn, params))

    def home_page(self, viewer: uuid.UUID, after: PostKey | None, limit: int) -> list[Entry]:
        """Up to ``limit`` entries of all the viewer's niches below ``after``, newest first."""
        params = [_text(viewer), _text(limit)]
        if after:
            params += (_text(after[0]), _text(after[1]))
        statement = _HOME[bool(after)]
        return self._run(lambda conn: _entries(statement.run(conn, params)))
