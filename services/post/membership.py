"""Post's membership view: who belongs to which niche, projected from graph's events.

Publishing needs one fact of graph — is the author a member of the niche? — and
asking graph costs a round trip per post. :class:`MembershipProjection` keeps
``member_view`` (user, niche, role) from ``MemberJoined``, ``MemberRoleChanged``,
``MemberLeft`` (left, removed, account deleted) and ``NicheArchived``, with the
runner's exactly-once effect (stream versions, offsets in the same transaction).

``PostApplication.publish`` reads it (:func:`standing`, inside the publish's own
transaction) only under two rules:

* a **yes** counts only while :class:`~kith.common.freshness.ProjectionFreshness`
  says the view is current (it held every graph event as of at most ``max_lag_s``
  ago); otherwise publish asks graph, the truth;
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

from kith.common.contracts import (
    MEMBER_JOINED,
    MEMBER_LEFT,
    MEMBER_ROLE_CHANGED,
    NICHE_ARCHIVED,
)
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


def standing(conn: psycopg.Connection, user_id: str, niche_id: str) -> tuple[bool, Role | None]:
    """Whether the user's account was erased, and their role in the niche by the view."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM deleted_authors WHERE user_id = %(u)s),"
        " (SELECT role FROM member_view WHERE user_id = %(u)s AND niche_id = %(n)s)",
        {"u": user_id, "n": niche_id}).fetchone()
    assert row is not None
    return bool(row[0]), Role(row[1]) if row[1] else None
