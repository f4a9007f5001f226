"""Post's membership view: who belongs to which niche, projected from graph's events.

Publishing needs one fact of graph — is the author a member of the niche? — and
asking graph costs a round trip per post. :class:`MembershipProjection` keeps
``member_view`` (user, niche, role) from ``MemberJoined``, ``MemberRoleChanged``,
``MemberLeft`` (left, removed, account deleted) and ``NicheArchived``, with the
runner's exactly-once effect (stream versions, offsets in the same transaction).

:class:`MembershipView` answers from it only under two rules:

* a **yes** counts only while :class:`~kith.common.freshness.ProjectionFreshness`
  says the view is current (it held every graph event as of at most ``max_lag_s``
  ago); otherwise the caller asks graph, the truth;
* a **no** never counts: a member who just joined may not be in the view yet, so an
  absent row is answered by graph too. The view can only save a round trip, never
  refuse.

Enforcement bound: after graph records a leave or removal, the view may still say
yes until it applies the ``MemberLeft`` or the gate shuts — at most graph's relay
delay plus ``max_lag_s`` (docs/post.md, measured by
tests/integration/post/test_membership_view.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from prometheus_client import Counter
from psycopg_pool import ConnectionPool

from kith.common.contracts import (
    MEMBER_JOINED,
    MEMBER_LEFT,
    MEMBER_ROLE_CHANGED,
    NICHE_ARCHIVED,
)
from kith.common.freshness import ProjectionFreshness
from kith.common.projection import Event
from kith.post.domain import Role

NAME = "post.memberships"
DEFAULT_MAX_LAG_MS = 150

CHECKS = Counter("kith_post_membership_checks_total",
                 "Publish membership checks, by who answered: the view or graph",
                 ["answered_by"])


class MembershipProjection:
    """``member_view`` from graph's topic (runs in the runner's transaction)."""

    name = NAME

    def __init__(self, graph_topic: str) -> None:
        self.topics = [graph_topic]

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        for event in events:  # in partition order: a niche's events are in its stream
            d = event.data
            if event.type == MEMBER_JOINED:
                conn.execute("INSERT INTO member_view (user_id, niche_id, role)"
                             " VALUES (%s, %s, %s) ON CONFLICT (user_id, niche_id)"
                             " DO UPDATE SET role = EXCLUDED.role",
                             (d["user_id"], d["niche_id"], _role(d["role"])))
            elif event.type == MEMBER_ROLE_CHANGED:
                conn.execute("UPDATE member_view SET role = %s"
                             " WHERE user_id = %s AND niche_id = %s",
                             (_role(d["role"]), d["user_id"], d["niche_id"]))
            elif event.type == MEMBER_LEFT:
                conn.execute("DELETE FROM member_view WHERE user_id = %s AND niche_id = %s",
                             (d["user_id"], d["niche_id"]))
            elif event.type == NICHE_ARCHIVED:
                conn.execute("DELETE FROM member_view WHERE niche_id = %s", (d["niche_id"],))

    def reset(self, conn: psycopg.Connection) -> None:
        conn.execute("DELETE FROM member_view")


def _role(value: str) -> str:
    return Role(value).value  # an unknown role holds the partition (poison): never guessed


class MembershipView:
    """The view's answer to "is ``user_id`` a member of ``niche_id``?", or ``None`` for
    "ask graph" (the view is not current, or has no row)."""

    def __init__(self, pool: ConnectionPool, freshness: ProjectionFreshness) -> None:
        self.pool = pool
        self.freshness = freshness

    def role(self, user_id: str, niche_id: str) -> Role | None:
        if not self.freshness.current():
            return None
        with self.pool.connection() as conn:
            row = conn.execute("SELECT role FROM member_view WHERE user_id = %s"
                               " AND niche_id = %s", (user_id, niche_id)).fetchone()
        return Role(row[0]) if row else None
