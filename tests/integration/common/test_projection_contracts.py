"""Every projection keeps the projection contract (tests/support/projection_contract.py)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from kith.common.codec import AvroCodec, default_codec
from kith.common.config import Settings
from kith.common.db import make_pool, migrate_service
from kith.common.eventstore import EventStore, NewEvent
from kith.common.projection import Projection
from kith.common.relay import OutboxRelay
from kith.feed.fanout import FanoutProjection
from tests.integration.common.test_projection import record_and_publish
from tests.integration.feed.feed_helpers import BASE_MS, Stream, append_and_publish, scenario
from tests.support.ledger import ERASED, LedgerProjection, ledger_codec
from tests.support.projection_contract import ProjectionContract


def append_and_relay(settings: Settings, service: str, codec: AvroCodec,
                     appends: Sequence[tuple[uuid.UUID, int, list[NewEvent]]]) -> None:
    """Append ``(stream, expected version, events)`` to ``service``'s event store and relay
    them to its topic, as the service does."""
    dsn = settings.database_url(service)
    pool = make_pool(dsn, max_size=2)
    try:
        store = EventStore(pool, codec)
        for stream_id, version, events in appends:
            store.append(stream_id, version, events)
    finally:
        pool.close()
    relay = OutboxRelay(dsn, settings.require_kafka(), settings.topic(service))
    with psycopg.connect(dsn, autocommit=True) as conn:
        while relay.publish_batch(conn):
            pass


class TestLedgerProjectionContract(ProjectionContract):
    """The test domain's balances (the runner's own guarantees, on the smallest read model)."""

    def projection(self, settings: Settings) -> Projection:
        return LedgerProjection([settings.topic("post")])

    def prepare(self, settings: Settings, dsn: str) -> None:
        with psycopg.connect(dsn) as conn:
            LedgerProjection.create_tables(conn)

    def publish_story(self, settings: Settings) -> None:
        self.accounts = record_and_publish(settings, accounts=6, events=40)

    def snapshot(self, conn: psycopg.Connection) -> Any:
        return conn.execute("SELECT * FROM ledger_balances ORDER BY 1").fetchall()

    def person(self) -> str:
        """The holder of the account with the most deposits."""
        return max(self.accounts, key=lambda a: self.accounts[a][1])

    def delete_account(self, settings: Settings, user_id: str) -> None:
        """The account erased, on its own stream after its deposits."""
        append_and_relay(settings, "post", self.codec(), [(
            uuid.UUID(user_id), self.accounts[user_id][1],
            [NewEvent(ERASED, {"account_id": user_id})])])

    def personal_data(self, conn: psycopg.Connection, user_id: str) -> Any:
        return conn.execute("SELECT * FROM ledger_balances WHERE account_id = %s",
                            (user_id,)).fetchall()

    def codec(self) -> AvroCodec:
        return ledger_codec()


class TestFeedFanoutProjectionContract(ProjectionContract):
    """The feed fan-out: membership and block churn, posts published and deleted."""

    service = "feed"

    def projection(self, settings: Settings) -> Projection:
        return FanoutProjection(settings.topic("graph"), settings.topic("post"), 5)

    def prepare(self, settings: Settings, dsn: str) -> None:
        migrate_service(dsn, "kith.feed")

    def publish_story(self, settings: Settings) -> None:
        rng = random.Random(3)
        self.streams = scenario(rng.randint, users=8, niches=3, posts=40, ops=8)
        append_and_publish(settings, self.streams, rng.randint)

    def snapshot(self, conn: psycopg.Connection) -> Any:
        """The feeds and the audience index (surrogate ids survive a reset)."""
        tables = ("feed_entries", "feed_posts", "feed_members", "feed_blocks", "feed_niches")
        state = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
        return state if any(state.values()) else {}

    def person(self) -> str:
        """The member of the most niches, then the author of the most live posts."""
        members, posts = self._final_state()
        people = {u for us in members.values() for u in us}
        return max(sorted(people), key=lambda u: (sum(u in us for us in members.values()),
                                                  sum(a == u for a in posts.values())))

    def delete_account(self, settings: Settings, user_id: str) -> None:
        """What graph and post record on identity's ``AccountDeleted``: the person leaves
        every niche (reason ``account_deleted``), unblocks everyone, and their posts are
        deleted by them."""
        members, posts = self._final_state()
        graph: list[tuple[uuid.UUID, int, list[NewEvent]]] = []
        post: list[tuple[uuid.UUID, int, list[NewEvent]]] = []
        for s in self.streams:
            if s.service == "graph" and user_id in members.get(s.stream_id, ()):
                graph.append((s.stream_id, len(s.events), [NewEvent("kith.graph.MemberLeft", {
                    "niche_id": str(s.stream_id), "user_id": user_id,
                    "reason": "account_deleted", "removed_by": None, "left_at_ms": BASE_MS})]))
            elif s.service == "graph" and str(s.stream_id) == user_id:
                unblocks = [NewEvent("kith.graph.UserUnblocked", {
                    "blocker_id": user_id, "blocked_id": blocked, "at_ms": BASE_MS})
                    for blocked in sorted(self._blocked_by(s))]
                if unblocks:
                    graph.append((s.stream_id, len(s.events), unblocks))
            elif s.service == "post" and posts.get(s.stream_id) == user_id:
                niche_id = s.events[0][1]["niche_id"]
                post.append((s.stream_id, len(s.events), [NewEvent("kith.post.PostDeleted", {
                    "post_id": str(s.stream_id), "niche_id": niche_id, "author_id": user_id,
                    "deleted_by": user_id, "deleted_at_ms": BASE_MS})]))
        assert graph and post, "the person neither belongs anywhere nor wrote anything"
        append_and_relay(settings, "graph", default_codec(), graph)
        append_and_relay(settings, "post", default_codec(), post)

    def personal_data(self, conn: psycopg.Connection, user_id: str) -> Any:
        """Their feed, their memberships and blocks, their live posts and every feed entry
        of theirs (surrogate ids resolved)."""
        found = {}
        for what, query in {
            "feed": "SELECT e.* FROM feed_entries e JOIN feed_refs r ON r.id = e.user_id"
                    " WHERE r.uuid = %(u)s",
            "entries": "SELECT e.* FROM feed_entries e JOIN feed_refs r ON r.id = e.author_id"
                       " WHERE r.uuid = %(u)s",
            "memberships": "SELECT m.* FROM feed_members m JOIN feed_refs r"
                           " ON r.id = m.user_id WHERE r.uuid = %(u)s",
            "blocks": "SELECT b.* FROM feed_blocks b JOIN feed_refs r ON r.id = b.blocker"
                      " WHERE r.uuid = %(u)s",
            "live posts": "SELECT p.* FROM feed_posts p JOIN feed_refs r ON r.id = p.author_id"
                          " WHERE r.uuid = %(u)s AND NOT p.deleted",
        }.items():
            if rows := conn.execute(query, {"u": user_id}).fetchall():
                found[what] = rows
        return found

    def _final_state(self) -> tuple[dict[uuid.UUID, set[str]], dict[uuid.UUID, str]]:
        """Members of each niche and the author of each live post, after the story."""
        members: dict[uuid.UUID, set[str]] = {}
        posts: dict[uuid.UUID, str] = {}
        for s in self.streams:
            for event_type, d in s.events:
                name = event_type.rsplit(".", 1)[1]
                if name == "MemberJoined":
                    members.setdefault(s.stream_id, set()).add(d["user_id"])
                elif name == "MemberLeft":
                    members[s.stream_id].discard(d["user_id"])
                elif name == "NicheArchived":
                    members[s.stream_id] = set()
                elif name == "PostPublished":
                    posts[s.stream_id] = d["author_id"]
                elif name == "PostDeleted":
                    posts.pop(s.stream_id, None)
        return members, posts

    @staticmethod
    def _blocked_by(blocker: Stream) -> set[str]:
        blocked: set[str] = set()
        for event_type, d in blocker.events:
            if event_type == "kith.graph.UserBlocked":
                blocked.add(d["blocked_id"])
            else:
                blocked.discard(d["blocked_id"])
        return blocked
