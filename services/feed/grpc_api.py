"""The FeedService servicer: validation and mapping around :class:`FeedApplication`."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from kith.feed.application import FeedApplication, FeedPage
from kith.protos import feed_pb2, feed_pb2_grpc, media_pb2


class FeedServicer(feed_pb2_grpc.FeedServiceServicer):
    def __init__(self, queries: FeedApplication) -> None:
        self.queries = queries

    def GetHomeFeed(self, request: feed_pb2.GetHomeFeedRequest,
                    context: grpc.ServicerContext) -> feed_pb2.FeedPage:
        return _page(self.queries.home_feed(request.viewer_id, request.limit, request.cursor))

    def GetNicheFeed(self, request: feed_pb2.GetNicheFeedRequest,
                     context: grpc.ServicerContext) -> feed_pb2.FeedPage:
        return _page(self.queries.niche_feed(request.viewer_id, request.niche_id, request.limit,
                                             request.cursor))


def _page(page: FeedPage) -> feed_pb2.FeedPage:
    return feed_pb2.FeedPage(next_cursor=page.next_cursor, hydrated=True, items=[
        feed_pb2.FeedItem(
            id=i.post.id, niche_id=i.post.niche_id, author_id=i.post.author_id,
            author_display_name=i.author_display_name, text=i.post.text,
            created_at_ms=i.post.created_at_ms, edited_at_ms=i.post.edited_at_ms,
            reactions=dict(i.post.reactions), my_reactions=list(i.post.my_reactions),
            comment_count=i.post.comment_count, typed=i.post.typed, names=dict(i.names),
            media=[media_pb2.MediaInfo(id=m.id, uploader_id=m.uploader_id,
                                       content_type=m.content_type, width=m.width,
                                       height=m.height, bytes=m.bytes,
                                       uploaded_at_ms=m.uploaded_at_ms) for m in i.photos])
        for i in page.items])


def register(servicer: FeedServicer) -> Callable[[grpc.Server], None]:
    return lambda server: feed_pb2_grpc.add_FeedServiceServicer_to_server(servicer, server)
