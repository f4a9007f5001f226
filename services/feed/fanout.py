"""The fan-out worker: graph and post events → the audience index and feed entries.

Each projection batch is applied in three steps, inside the runner's transaction:

1. **State.** The batch's changes are replayed in order over the audience state they
   touch (memberships, block edges, posts), giving the state before and after the batch.
   Only per-stream order matters, and each piece of state belongs to one stream.
2. **Locks.** Users whose memberships or blocks change, then every niche involved, are
   locked (in id order) so that workers sharing the topics' partitions never fan out
   from a stale audience.
3. **Feeds.** Every feed whose inputs changed is brought to the convergence rule of
   :mod:`kith.feed.domain`: purges for memberships that ended; an exact
   :func:`~kith.feed.entries.reconcile` for new memberships, block changes and members
   with blocks towards a niche's authors; and for everybody else, per niche, one window
   shift shared by all its members — new deliveries go out in a single binary COPY.

Since each step computes the final feeds from the final state, the result does not
depend on how events were split into batches or interleaved across topics.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import psycopg

from kith.common import metrics
from kith.common.projection import Event
from kith.feed import entries
from kith.feed.audience import NICHES, AudienceIndex, Pair
from kith.feed.domain import FeedPost, below, window_shift
from kith.feed.events import (
    Archived,
    Blocked,
    Change,
    Deleted,
    Joined,
    Left,
    NicheOpened,
    Published,
    Unblocked,
    to_change,
)

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counters of one batch, summed into the projection's totals."""

    events: int = 0
    deliveries: int = 0  # entries added (COPY and reconciliation)
    retractions: int = 0  # (user, post) pairs retracted by the window
    reconciled: int = 0  # feeds recomputed exactly

    def add(self, other: BatchStats) -> None:
        self.events += other.events
        self.deliveries += other.deliveries
        self.retractions += other.retractions
        self.reconciled += other.reconciled


@dataclass
class _Plan:
    """The batch's changes resolved to surrogate ids, and the state they lead to."""

    ids: dict[uuid.UUID, int]
    members: dict[int, set[int]] = field(default_factory=dict)  # niche → members (after)
    members_before: dict[int, set[int]] = field(default_factory=dict)
    archived: set[int] = field(default_factory=set)
    edges_before: set[Pair] = field(default_factory=set)
    edges: set[Pair] = field(default_factory=set)
    published: dict[uuid.UUID, FeedPost] = field(default_factory=dict)
    deleted_new: set[uuid.UUID] = field(default_factory=set)  # published and deleted here
    retracted: dict[uuid.UUID, FeedPost] = field(default_factory=dict)


class FanoutProjection:
    """The ``feed.fanout`` projection: keeps every member's niche feed per DESIGN §4."""

    name = "feed.fanout"

    def __init__(self, graph_topic: str, post_topic: str, feed_size: int) -> None:
        if feed_size < 1:
            raise ValueError("feed_size must be at least 1")
        self.topics = (graph_topic, post_topic)
        self.feed_size = feed_size
        self.totals = BatchStats()
        self.batches = 0
        self.last_batch = BatchStats()

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        changes: list[Change] = []
        for event in events:
            try:
                change = to_change(event.type, event.data)
            except (KeyError, ValueError, TypeError):
                log.error("skipping malformed %s %s", event.type, event.envelope.event_id)
                continue
            if change is not None:
                changes.append(change)
        stats = apply_changes(conn, changes, self.feed_size) if changes else BatchStats()
        stats.events = len(events)
        self.last_batch = stats
        self.batches += 1
        self.totals.add(stats)
        metrics.observe_fanout_batch(self.name, stats.deliveries)

    def reset(self, conn: psycopg.Connection) -> None:
        """Empty the audience index and the feeds (surrogate ids are kept: they never change)."""
        conn.execute("TRUNCATE feed_entries, feed_posts, feed_members, feed_blocks, feed_niches")


def apply_changes(conn: psycopg.Connection, changes: Sequence[Change], feed_size: int
                  ) -> BatchStats:
    """Apply one batch of changes (in delivery order) to the audience index and the feeds."""
    index = AudienceIndex(conn)
    plan = _Plan(ids=index.resolve(_uuids(changes)))
    ids = plan.ids

    # -- locks: users, then niches ---------------------------------------------------------
    block_pairs = {(ids[c.blocker], ids[c.blocked]) for c in changes
                   if isinstance(c, Blocked | Unblocked)}
    block_users = {u for pair in block_pairs for u in pair}
    index.lock({ids[c.user] for c in changes if isinstance(c, Joined | Left)} | block_users)
    niches_of_blockers = index.niches_of(block_users)
    graph_niches = {ids[c.niche] for c in changes if isinstance(c, NicheOpened | Joined | Left
                                                                   | Archived)}
    # A post is published once (version 1 of its stream); only deletions need its record.
    known_posts = index.posts({c.post for c in changes if isinstance(c, Deleted)})
    post_niches = {ids[c.niche] for c in changes if isinstance(c, Published)}
    post_niches |= {p.niche_id for p, _ in known_posts.values()}
    all_niches = graph_niches | post_niches | {n for ns in niches_of_blockers.values()
                                               for n in ns}
    index.ensure_niches(graph_niches | post_niches)
    index.lock(all_niches, NICHES)

    # -- state: replay the batch over what it touches --------------------------------------
    plan.members_before = index.members(graph_niches)
    plan.members = {n: set(us) for n, us in plan.members_before.items()}
    was_archived = index.archived(graph_niches)
    both_ways = {(a, z) for a, z in block_pairs} | {(z, a) for a, z in block_pairs}
    plan.edges_before = index.block_edges(both_ways)
    plan.edges = set(plan.edges_before)
    for c in changes:
        _replay(plan, c, known_posts, was_archived)

    # -- write the audience index ----------------------------------------------------------
    joined = {(u, n) for n, us in plan.members.items() for u in us - plan.members_before[n]}
    left = {(u, n) for n, us in plan.members_before.items() for u in us - plan.members[n]}
    index.add_members(joined)
    index.remove_members(left)
    index.archive(plan.archived - was_archived)
    index.set_blocks(plan.edges - plan.edges_before, plan.edges_before - plan.edges)
    index.add_posts([(p, p.post_id in plan.deleted_new) for p in plan.published.values()])
    index.mark_deleted(list(plan.retracted))
    new_live: dict[int, list[FeedPost]] = defaultdict(list)
    for p in plan.published.values():
        if p.post_id not in plan.deleted_new:
            new_live[p.niche_id].append(p)
    retracted: dict[int, list[FeedPost]] = defaultdict(list)
    for p in plan.retracted.values():
        retracted[p.niche_id].append(p)
    shifted = set(new_live) | set(retracted)
    floors = index.shift_floors(
        {n: len(new_live.get(n, ())) - len(retracted.get(n, ())) for n in shifted}, feed_size)

    # -- feeds -----------------------------------------------------------------------------
    stats = BatchStats()
    entries.purge(conn, left)
    exact: set[Pair] = set(joined)
    for a, z in block_pairs:
        if ((a, z) in plan.edges_before or (z, a) in plan.edges_before) != (
                (a, z) in plan.edges or (z, a) in plan.edges):
            after = index.niches_of([a, z])
            exact |= {(a, n) for n in after.get(a, ())} | {(z, n) for n in after.get(z, ())}
    exact |= index.blocked_audience(shifted)
    audiences = index.members(shifted)
    rows: list[Iterable[entries.Row]] = []
    for niche in shifted:
        old, new = floors[niche]
        span: list[FeedPost] = []
        if old != new:
            lo, hi = (new, old) if below(new, old) else (old, new)
            span = index.live_span(niche, lo, hi, [p.post_id for p in new_live.get(niche, ())])
        insert, delete = window_shift(new_live.get(niche, ()), retracted.get(niche, ()),
                                      old, new, span)
        plain = [u for u in audiences[niche] if (u, niche) not in exact]
        if delete and plain:
            entries.retract(conn, plain, delete)
            stats.retractions += len(plain) * len(delete)
        if plain and insert:
            rows.append(entries.deliveries(plain, insert))
    stats.deliveries = entries.copy_rows(conn, chain.from_iterable(rows)) if rows else 0
    stats.reconciled = len(exact)
    stats.deliveries += entries.reconcile(conn, exact, feed_size)
    return stats


def _uuids(changes: Sequence[Change]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for c in changes:
        if isinstance(c, NicheOpened | Archived):
            found.add(c.niche)
        elif isinstance(c, Joined | Left):
            found |= {c.niche, c.user}
        elif isinstance(c, Blocked | Unblocked):
            found |= {c.blocker, c.blocked}
        elif isinstance(c, Published):
            found |= {c.niche, c.author}
    return found


def _replay(plan: _Plan, c: Change, known: dict[uuid.UUID, tuple[FeedPost, bool]],
            was_archived: set[int]) -> None:
    """Advance the batch's view of the state by one change."""
    ids = plan.ids
    if isinstance(c, Joined):
        niche = ids[c.niche]
        if niche not in was_archived and niche not in plan.archived:
            plan.members[niche].add(ids[c.user])
    elif isinstance(c, Left):
        plan.members[ids[c.niche]].discard(ids[c.user])
    elif isinstance(c, Archived):
        plan.archived.add(ids[c.niche])
        plan.members[ids[c.niche]].clear()
    elif isinstance(c, Blocked):
        plan.edges.add((ids[c.blocker], ids[c.blocked]))
    elif isinstance(c, Unblocked):
        plan.edges.discard((ids[c.blocker], ids[c.blocked]))
    elif isinstance(c, Published):
        if c.post not in plan.published:
            plan.published[c.post] = FeedPost(c.post, ids[c.niche], ids[c.author],
                                              c.created_at_ms)
    elif isinstance(c, Deleted):
        if c.post in plan.published:
            plan.deleted_new.add(c.post)
        elif c.post in known and not known[c.post][1]:
            plan.retracted[c.post] = known[c.post][0]
