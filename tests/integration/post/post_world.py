"""A running graph + post pair and the moves the post tests make with it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TypeVar

import grpc
import psycopg

from kith.common.codec import default_codec
from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from kith.common.relay import OutboxRelay
from kith.protos import graph_pb2, graph_pb2_grpc, post_pb2, post_pb2_grpc
from tests.support.rpc import channel

T = TypeVar("T")


def user() -> str:
    return str(uuid.uuid4())


@dataclass
class World:
    settings: Settings
    graph: graph_pb2_grpc.GraphServiceStub
    post: post_pb2_grpc.PostServiceStub
    channels: list[grpc.Channel]

    @classmethod
    def connect(cls, settings: Settings) -> World:
        g, p = channel(settings.grpc_addr("graph")), channel(settings.grpc_addr("post"))
        return cls(settings, graph_pb2_grpc.GraphServiceStub(g),
                   post_pb2_grpc.PostServiceStub(p), [g, p])

    def close(self) -> None:
        for ch in self.channels:
            ch.close()

    # -- graph moves --------------------------------------------------------------------------

    def niche(self, owner: str, *members: str) -> str:
        niche_id = self.graph.CreateNiche(graph_pb2.CreateNicheRequest(
            actor_id=owner, name="circle", kind="friends")).id
        for member in members:
            self.join(niche_id, owner, member)
        return niche_id

    def join(self, niche_id: str, inviter: str, member: str) -> None:
        code = self.graph.CreateInvite(graph_pb2.CreateInviteRequest(
            actor_id=inviter, niche_id=niche_id)).code
        self.graph.AcceptInvite(graph_pb2.AcceptInviteRequest(actor_id=member, code=code))

    def block(self, blocker: str, blocked: str) -> None:
        self.graph.Block(graph_pb2.BlockRequest(actor_id=blocker, user_id=blocked))

    def unblock(self, blocker: str, blocked: str) -> None:
        self.graph.Unblock(graph_pb2.BlockRequest(actor_id=blocker, user_id=blocked))

    # -- post moves ---------------------------------------------------------------------------

    def publish(self, actor: str, niche_id: str, text: str = "hello niche") -> post_pb2.Post:
        return self.post.Publish(post_pb2.PublishRequest(actor_id=actor, niche_id=niche_id,
                                                         text=text))

    def get(self, viewer: str, post_id: str) -> post_pb2.Post:
        return self.post.GetPost(post_pb2.GetPostRequest(viewer_id=viewer, post_id=post_id))

    def visible(self, viewer: str, post_id: str) -> bool:
        try:
            self.get(viewer, post_id)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    def react(self, actor: str, post_id: str, kind: str) -> None:
        self.post.AddReaction(post_pb2.ReactionRequest(actor_id=actor, post_id=post_id,
                                                       kind=kind))

    def unreact(self, actor: str, post_id: str, kind: str) -> None:
        self.post.RemoveReaction(post_pb2.ReactionRequest(actor_id=actor, post_id=post_id,
                                                          kind=kind))

    def comment(self, actor: str, post_id: str, text: str = "nice") -> post_pb2.Comment:
        return self.post.AddComment(post_pb2.AddCommentRequest(actor_id=actor, post_id=post_id,
                                                               text=text))

    def comments(self, viewer: str, post_id: str, limit: int = 0,
                 cursor: str = "") -> post_pb2.ListCommentsResponse:
        return self.post.ListComments(post_pb2.ListCommentsRequest(
            viewer_id=viewer, post_id=post_id, limit=limit, cursor=cursor))

    def delete(self, actor: str, post_id: str) -> None:
        self.post.Delete(post_pb2.DeleteRequest(actor_id=actor, post_id=post_id))

    # -- identity, as its relay publishes it ----------------------------------------------------

    def delete_account(self, user_id: str) -> None:
        """Record ``AccountDeleted`` in an identity event store and relay it to its topic."""
        dsn = self.settings.database_url("identity")
        pool = make_pool(dsn)
        try:
            EventStore(pool, default_codec()).append(uuid.UUID(user_id), 0, [NewEvent(
                "kith.identity.AccountDeleted",
                {"user_id": user_id, "deleted_at_ms": int(time.time() * 1000)})])
        finally:
            pool.close()
        relay = OutboxRelay(dsn, self.settings.kafka_bootstrap or "",
                            self.settings.topic("identity"))
        with psycopg.connect(dsn, autocommit=True) as conn:
            while relay.publish_batch(conn):
                pass



