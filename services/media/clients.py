"""Adapters onto other services: :class:`CarriersClient` asks a carrier's owner (post,
messaging, graph) whether a user can see it."""

from __future__ import annotations

import grpc

from kith.common.errors import DependencyUnavailable
from kith.protos import (
    graph_pb2,
    graph_pb2_grpc,
    messaging_pb2,
    messaging_pb2_grpc,
    post_pb2,
    post_pb2_grpc,
)


class CarriersClient:
    """:class:`~kith.media.carriers.Carriers` over post's ``GetPost``, graph's
    ``BlockedAmong`` and messaging's ``GetConversation``."""

    def __init__(self, post: grpc.Channel, messaging: grpc.Channel,
                 graph: grpc.Channel) -> None:
        self._post = post_pb2_grpc.PostServiceStub(post)
        self._graph = graph_pb2_grpc.GraphServiceStub(graph)
        self._messaging = messaging_pb2_grpc.MessagingServiceStub(messaging)

    def can_see(self, viewer_id: str, kind: str, carrier_id: str, parent_id: str,
                author_id: str) -> bool:
        try:
            if kind == "post":
                self._post.GetPost(post_pb2.GetPostRequest(viewer_id=viewer_id,
                                                           post_id=carrier_id))
            elif kind == "comment":  # a comment is seen by whoever sees its post
                self._post.GetPost(post_pb2.GetPostRequest(viewer_id=viewer_id,
                                                           post_id=parent_id))
                blocked = self._graph.BlockedAmong(graph_pb2.BlockedAmongRequest(
                    user_id=viewer_id, other_ids=[author_id]))
                return author_id not in blocked.blocked_ids
            elif kind == "message":  # members (current ones) read the conversation
                self._messaging.GetConversation(
                    messaging_pb2.GetConversationRequest(actor_id=viewer_id,
                                                         conversation_id=parent_id))
            else:
                return False
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
                              grpc.StatusCode.INVALID_ARGUMENT):
                return False
            raise DependencyUnavailable(f"the {kind}'s owner did not answer") from None
        return True
