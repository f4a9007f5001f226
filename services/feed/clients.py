"""gRPC adapters for the ports of :mod:`kith.feed.application`."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from kith.common.rpc import dependency
from kith.feed.application import PostView
from kith.protos import identity_pb2, identity_pb2_grpc, post_pb2, post_pb2_grpc

MAX_BATCH = 200  # BatchGetPosts' limit


class PostClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = post_pb2_grpc.PostServiceStub(channel)

    def batch_get(self, viewer_id: str, post_ids: Sequence[str]) -> dict[str, PostView]:
        found: dict[str, PostView] = {}
        for start in range(0, len(post_ids), MAX_BATCH):
            with dependency("post"):
                reply = self.stub.BatchGetPosts(post_pb2.BatchGetPostsRequest(
                    viewer_id=viewer_id, post_ids=post_ids[start:start + MAX_BATCH]))
            for p in reply.items:
                found[p.id] = PostView(p.id, p.niche_id, p.author_id, p.text, p.created_at_ms,
                                       p.edited_at_ms, dict(p.reactions), list(p.my_reactions),
                                       p.comment_count, p.typed,
                                       # an answer is hidden per viewer across blocks
                                       cacheable=not p.typed.HasField("answered_by"))
        return found


class IdentityClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = identity_pb2_grpc.IdentityServiceStub(channel)

    def display_names(self, user_ids: Sequence[str]) -> dict[str, str]:
        if not user_ids:
            return {}
        with dependency("identity"):
            reply = self.stub.BatchGetProfiles(
                identity_pb2.BatchGetProfilesRequest(user_ids=list(user_ids)))
        return {p.id: p.display_name for p in reply.profiles}
