"""gRPC adapters for the ports of :mod:`kith.feed.application`."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc

from kith.common.rpc import dependency
from kith.feed.application import PersonaKey, Photo, PostView
from kith.protos import (
    graph_pb2,
    graph_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
    post_pb2,
    post_pb2_grpc,
)

log = logging.getLogger(__name__)
MAX_BATCH = 200  # BatchGetPosts' limit, and ListAttached's
MAX_PERSONAS = 1000  # GetPersonas' limit


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


class GraphClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = graph_pb2_grpc.GraphServiceStub(channel)

    def personas(self, viewer_id: str, keys: Sequence[PersonaKey]) -> dict[PersonaKey, str]:
        found: dict[PersonaKey, str] = {}
        for start in range(0, len(keys), MAX_PERSONAS):
            with dependency("graph"):
                reply = self.stub.GetPersonas(graph_pb2.GetPersonasRequest(
                    actor_id=viewer_id, keys=[graph_pb2.PersonaKey(niche_id=n, user_id=u)
                                              for n, u in keys[start:start + MAX_PERSONAS]]))
            found.update({(p.niche_id, p.user_id): p.display_name for p in reply.items})
        return found


class MediaClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = media_pb2_grpc.MediaServiceStub(channel)

    def photos(self, viewer_id: str, post_ids: Sequence[str]) -> dict[str, list[Photo]] | None:
        found: dict[str, list[Photo]] = {}
        for start in range(0, len(post_ids), MAX_BATCH):
            try:
                reply = self.stub.ListAttached(media_pb2.ListAttachedRequest(
                    actor_id=viewer_id, carriers=[media_pb2.Carrier(kind="post", id=p)
                                                  for p in post_ids[start:start + MAX_BATCH]]))
            except grpc.RpcError as exc:  # a page is served without photos, not failed
                log.warning("photos left out: media did not answer (%s)", exc.code())
                return None
            for c in reply.items:
                found[c.carrier.id] = [Photo(i.id, i.uploader_id, i.content_type, i.width,
                                             i.height, i.bytes, i.uploaded_at_ms)
                                       for i in c.items]
        return found
