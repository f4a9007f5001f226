"""Scenarios of graph and post event streams, the reference feed model, and feed snapshots.

A scenario is a set of streams (niche streams, blockers' streams, post streams) whose
events are valid in their own order; a delivery order is any interleaving that keeps
each stream's order. The reference model computes every feed from the final state
alone, exactly as DESIGN §4 words the rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from kith.common.kafka import EventEnvelope
from kith.common.projection import Event

Draw = Callable[[int, int], int]  # an integer in [lo, hi], from hypothesis or a seeded RNG
BASE_MS = 1_760_000_000_000
Feeds = set[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]  # (user, niche, post)


@dataclass
class Stream:
    service: str  # "graph" or "post": the topic
    stream_id: uuid.UUID
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def ids(prefix: int, n: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=(prefix << 64) | (i + 1)) for i in range(n)]


def scenario(draw: Draw, users: int = 5, niches: int = 2, posts: int = 12,
             ops: int = 6) -> list[Stream]:
    """Random but valid streams: membership churn, block churn, posts with some deletions."""
    people = ids(1, users)
    streams: list[Stream] = []
    for niche in ids(2, niches):
        s = Stream("graph", niche)
        owner = people[draw(0, users - 1)]
        s.events.append(("kith.graph.NicheCreated", {
            "niche_id": str(niche), "owner_id": str(owner), "name": "n", "kind": "friends",
            "description": "", "member_cap": 150, "created_at_ms": BASE_MS}))
        s.events.append(_joined(niche, owner))
        members = {owner}
        for _ in range(draw(0, ops)):
            user = people[draw(0, users - 1)]
            if user in members:
                members.discard(user)
                s.events.append(("kith.graph.MemberLeft", {
                    "niche_id": str(niche), "user_id": str(user), "reason": "left",
                    "removed_by": None, "left_at_ms": BASE_MS}))
            else:
                members.add(user)
                s.events.append(_joined(niche, user))
        if draw(0, 5) == 0:  # the last ones leave and the niche is archived
            for user in sorted(members):
                s.events.append(("kith.graph.MemberLeft", {
                    "niche_id": str(niche), "user_id": str(user), "reason": "left",
                    "removed_by": None, "left_at_ms": BASE_MS}))
            s.events.append(("kith.graph.NicheArchived", {
                "niche_id": str(niche), "archived_by": str(owner), "archived_at_ms": BASE_MS}))
        streams.append(s)
    for blocker in people:
        s = Stream("graph", blocker)
        blocked: set[uuid.UUID] = set()
        for _ in range(draw(0, 2)):
            other = people[draw(0, users - 1)]
            if other == blocker:
                continue
            kind = "kith.graph.UserUnblocked" if other in blocked else "kith.graph.UserBlocked"
            blocked ^= {other}
            s.events.append((kind, {"blocker_id": str(blocker), "blocked_id": str(other),
                                    "at_ms": BASE_MS}))
        if s.events:
            streams.append(s)
    niche_ids = ids(2, niches)
    for post in ids(3, draw(posts // 3, posts)):
        niche = niche_ids[draw(0, niches - 1)]
        author = people[draw(0, users - 1)]
        s = Stream("post", post)
        s.events.append(("kith.post.PostPublished", {
            "post_id": str(post), "niche_id": str(niche), "author_id": str(author),
            "text": "hello", "created_at_ms": BASE_MS + draw(0, 12)}))  # ties on purpose
        if draw(0, 3) == 0:
            s.events.append(("kith.post.PostEdited", {
                "post_id": str(post), "niche_id": str(niche), "text": "edited",
                "edited_at_ms": BASE_MS}))
        if draw(0, 2) == 0:
            s.events.append(("kith.post.PostDeleted", {
                "post_id": str(post), "niche_id": str(niche), "author_id": str(author),
                "deleted_by": str(author), "deleted_at_ms": BASE_MS}))
        streams.append(s)
    return streams


def _joined(niche: uuid.UUID, user: uuid.UUID) -> tuple[str, dict[str, Any]]:
    return ("kith.graph.MemberJoined", {"niche_id": str(niche), "user_id": str(user),
                                        "role": "member", "invite_id": None,
                                        "joined_at_ms": BASE_MS})


def interleave(streams: Sequence[Stream], draw: Draw
               ) -> list[tuple[Stream, int, tuple[str, dict[str, Any]]]]:
    """One delivery order: ``(stream, version, event)``, each stream's order kept."""
    cursors = [0] * len(streams)
    live = [i for i, s in enumerate(streams) if s.events]
    out = []
    while live:
        pick = live[draw(0, len(live) - 1)]
        stream = streams[pick]
        out.append((stream, cursors[pick] + 1, stream.events[cursors[pick]]))
        cursors[pick] += 1
        if cursors[pick] == len(stream.events):
            live.remove(pick)
    return out


def as_event(stream: Stream, version: int, event: tuple[str, dict[str, Any]],
             offset: int) -> Event:
    """A decoded event as the projection runner hands it over."""
    event_type, data = event
    envelope = EventEnvelope(topic=stream.service, partition=0, offset=offset,
                             stream_id=stream.stream_id, event_id=uuid.uuid4(),
                             type=event_type, version=version, position=offset,
                             payload=b"", metadata={})
    return Event(envelope, event_type, data)


def expected_feeds(streams: Iterable[Stream], feed_size: int) -> Feeds:
    """The convergence rule over the final state of the streams."""
    members: dict[uuid.UUID, set[uuid.UUID]] = {}
    blocks: set[tuple[uuid.UUID, uuid.UUID]] = set()
    posts: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID, int]] = {}  # post → niche, author, ts
    for s in streams:
        for event_type, d in s.events:
            name = event_type.rsplit(".", 1)[1]
            if name == "MemberJoined":
                members.setdefault(uuid.UUID(d["niche_id"]), set()).add(uuid.UUID(d["user_id"]))
            elif name == "MemberLeft":
                members[uuid.UUID(d["niche_id"])].discard(uuid.UUID(d["user_id"]))
            elif name == "NicheArchived":
                members[uuid.UUID(d["niche_id"])] = set()
            elif name == "UserBlocked":
                blocks.add((uuid.UUID(d["blocker_id"]), uuid.UUID(d["blocked_id"])))
            elif name == "UserUnblocked":
                blocks.discard((uuid.UUID(d["blocker_id"]), uuid.UUID(d["blocked_id"])))
            elif name == "PostPublished":
                posts[uuid.UUID(d["post_id"])] = (uuid.UUID(d["niche_id"]),
                                                  uuid.UUID(d["author_id"]), d["created_at_ms"])
            elif name == "PostDeleted":
                posts.pop(uuid.UUID(d["post_id"]), None)
    feeds: Feeds = set()
    for niche, users in members.items():
        for user in users:
            visible = sorted(
                ((ts, post) for post, (n, author, ts) in posts.items()
                 if n == niche and (user, author) not in blocks and (author, user) not in blocks),
                reverse=True)
            feeds |= {(user, niche, post) for _, post in visible[:feed_size]}
    return feeds


def actual_feeds(conn: psycopg.Connection) -> Feeds:
    rows = conn.execute(
        "SELECT u.uuid, n.uuid, e.post_id FROM feed_entries e"
        " JOIN feed_refs u ON u.id = e.user_id JOIN feed_refs n ON n.id = e.niche_id").fetchall()
    conn.commit()  # hold no locks: a rebuild truncates
    assert len(rows) == len(set(rows))
    return set(rows)


def entry_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM feed_entries").fetchone()[0]


def append_and_publish(settings: Any, streams: Sequence[Stream], draw: Draw) -> int:
    """Append the streams (interleaved) to graph's and post's event stores, relay them to
    Kafka, and return how many events were published."""
    from kith.common.codec import default_codec
    from kith.common.db import make_pool
    from kith.common.eventstore import EventStore, NewEvent
    from kith.common.relay import OutboxRelay

    stores = {svc: EventStore(make_pool(settings.database_url(svc), max_size=2), default_codec())
              for svc in ("graph", "post")}
    try:
        for stream, version, (event_type, data) in interleave(streams, draw):
            stores[stream.service].append(stream.stream_id, version - 1,
                                          [NewEvent(event_type, data)])
    finally:
        for store in stores.values():
            store.pool.close()
    published = 0
    for svc in ("graph", "post"):
        dsn = settings.database_url(svc)
        relay = OutboxRelay(dsn, settings.require_kafka(), settings.topic(svc), batch_size=200)
        with psycopg.connect(dsn, autocommit=True) as conn:
            while relay.publish_batch(conn):
                pass
        published += relay.published
    return published


def consumed(conn: psycopg.Connection, projection: str = "feed.fanout") -> int:
    """Events the projection has committed offsets for (all partitions)."""
    conn.commit()
    row = conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets"
                       " WHERE projection = %s", (projection,)).fetchone()
    conn.commit()
    return int(row[0])


def feed_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    conn.commit()
    rows = conn.execute("SELECT * FROM feed_entries ORDER BY 1, 2, 3, 4").fetchall()
    conn.commit()
    return rows
