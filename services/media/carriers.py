"""Asking a carrier's owner whether a user can see it: post for posts and comments,
messaging for messages. One rule for a photo and the text it travels with.

A comment is shown to whoever sees its post, except across a block with the
comment's author (post leaves such comments out of listings); only its author
can attach photos to a comment, so that author is the photo's uploader, and
graph's ``BlockedAmong`` answers the second half."""

from __future__ import annotations

from typing import Protocol

import grpc

from kith.common.errors import DependencyUnavailable
from kith.common.rpc import channel
from kith.protos import (
    graph_pb2,
    graph_pb2_grpc,
    messaging_pb2,
    messaging_pb2_grpc,
    post_pb2,
    post_pb2_grpc,
)

KINDS = ("post", "comment", "message")


class Carriers(Protocol):
    def can_see(self, viewer_id: str, kind: str, carrier_id: str, parent_id: str,
                author_id: str) -> bool:
        """Whether ``viewer_id`` can see the carrier of ``author_id`` right now (its owner
        decides)."""


class GrpcCarriers:
    """:class:`Carriers` over post's ``GetPost`` and messaging's ``GetConversation``."""

    def __init__(self, post_address: str, messaging_address: str, graph_address: str) -> None:
        self._post = post_pb2_grpc.PostServiceStub(channel(post_address))
        self._graph = graph_pb2_grpc.GraphServiceStub(channel(graph_address))
        self._messaging = messaging_pb2_grpc.MessagingServiceStub(channel(messaging_address))

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
