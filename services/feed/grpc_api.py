"""The FeedService servicer: validation and mapping around :class:`FeedApplication`.

A page goes out pre-serialized, in one of two forms. Asked with ``json`` (the
gateway), its items are one JSON array in API.md's shape (``FeedPage.items_json``):
each item is its viewer-independent JSON (:func:`kith.common.post_json.feed_item_parts`,
which the page cache keeps per post) with the viewer's ``my_reactions`` spliced in,
so the gateway writes it into its answer without parsing or rendering anything.

Otherwise (a gateway older than ``json``) the items are ``FeedItem`` messages.
Protobuf's wire format is a concatenation of fields, and a parser appends repeated
fields it meets again, so such a ``FeedPage`` is, byte for byte, each item as (tag
of ``items``, length, item) followed by ``next_cursor`` and ``hydrated``; and an
item is its viewer-independent encoding (:func:`encode_item`, which the page cache
keeps per post) followed by the viewer's ``my_reactions``, each
as (tag, length, text). :func:`encode_page` assembles that without building a
message, and :func:`register` serves the two RPCs with a response serializer that
passes those bytes through. What the caller parses is the same ``FeedPage``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import grpc

from kith.common.post_json import feed_item_parts, items_array
from kith.feed.application import Encoded, FeedApplication, FeedItem, FeedPage
from kith.protos import feed_pb2, feed_pb2_grpc, media_pb2

SERVICE = feed_pb2.DESCRIPTOR.services_by_name["FeedService"].full_name
_ITEMS = b"\x0a"  # FeedPage.items: field 1, length-delimited
_NEXT_CURSOR = b"\x12"  # FeedPage.next_cursor: field 2, length-delimited
_HYDRATED = b"\x18\x01"  # FeedPage.hydrated = true: field 3, varint 1
_MY_REACTIONS = b"\x4a"  # FeedItem.my_reactions: field 9, length-delimited
_ITEMS_JSON = b"\x22"  # FeedPage.items_json: field 4, length-delimited


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_HEADERS = [_ITEMS + _varint(n) for n in range(4096)]  # an item's tag and length, precomputed


@functools.lru_cache(maxsize=256)
def _reaction(kind: str) -> bytes:
    """One ``my_reactions`` entry (the kinds are few)."""
    data = kind.encode()
    return _MY_REACTIONS + _varint(len(data)) + data


def encode_item(i: FeedItem) -> Encoded:
    """A page item without ``my_reactions`` (the same for every viewer), as a serialized
    ``FeedItem`` and as API.md's JSON cut where ``my_reactions`` goes."""
    return Encoded(_item_message(i), feed_item_parts(i.post, i.author_display_name, i.names,
                                                     i.photos))


def _item_message(i: FeedItem) -> bytes:
    return feed_pb2.FeedItem(
        id=i.post.id, niche_id=i.post.niche_id, author_id=i.post.author_id,
        author_display_name=i.author_display_name, text=i.post.text,
        created_at_ms=i.post.created_at_ms, edited_at_ms=i.post.edited_at_ms,
        reactions=dict(i.post.reactions), comment_count=i.post.comment_count,
        typed=i.post.typed, names=dict(i.names),
        media=[media_pb2.MediaInfo(id=m.id, uploader_id=m.uploader_id,
                                   content_type=m.content_type, width=m.width,
                                   height=m.height, bytes=m.bytes,
                                   uploaded_at_ms=m.uploaded_at_ms) for m in i.photos],
    ).SerializeToString()


def _tail(page: FeedPage) -> bytes:
    """``next_cursor`` and ``hydrated``, serialized."""
    if page.next_cursor:
        cursor = page.next_cursor.encode()
        return _NEXT_CURSOR + _varint(len(cursor)) + cursor + _HYDRATED
    return _HYDRATED


def encode_json_page(page: FeedPage) -> bytes:
    """The serialized ``FeedPage`` (``items_json``, ``hydrated`` set) of an application page."""
    items = items_array([(e.json, mine) for e, mine in page.items])
    return _ITEMS_JSON + _varint(len(items)) + items + _tail(page)


def encode_page(page: FeedPage) -> bytes:
    """The serialized ``FeedPage`` (``items``, ``hydrated`` set) of an application page."""
    parts: list[bytes] = []
    add = parts.append
    for encoded, mine in page.items:
        body = encoded.proto
        if mine:
            body = body + b"".join(map(_reaction, mine))
        size = len(body)
        add(_HEADERS[size] if size < 4096 else _ITEMS + _varint(size))
        add(body)
    add(_tail(page))
    return b"".join(parts)


class FeedServicer(feed_pb2_grpc.FeedServiceServicer):
    def __init__(self, queries: FeedApplication) -> None:
        self.queries = queries

    def home_feed_bytes(self, request: feed_pb2.GetHomeFeedRequest,
                        context: grpc.ServicerContext) -> bytes:
        page = self.queries.home_feed(request.viewer_id, request.limit, request.cursor)
        return encode_json_page(page) if request.json else encode_page(page)

    def niche_feed_bytes(self, request: feed_pb2.GetNicheFeedRequest,
                         context: grpc.ServicerContext) -> bytes:
        page = self.queries.niche_feed(request.viewer_id, request.niche_id, request.limit,
                                       request.cursor)
        return encode_json_page(page) if request.json else encode_page(page)

    def GetHomeFeed(self, request: feed_pb2.GetHomeFeedRequest,
                    context: grpc.ServicerContext) -> feed_pb2.FeedPage:
        return feed_pb2.FeedPage.FromString(self.home_feed_bytes(request, context))

    def GetNicheFeed(self, request: feed_pb2.GetNicheFeedRequest,
                     context: grpc.ServicerContext) -> feed_pb2.FeedPage:
        return feed_pb2.FeedPage.FromString(self.niche_feed_bytes(request, context))


def _pre_serialized(response: bytes) -> bytes:
    return response


def register(servicer: FeedServicer) -> Callable[[grpc.Server], None]:
    """Serve ``FeedService`` answering with :func:`encode_page`'s (or
    :func:`encode_json_page`'s) bytes as they are."""
    def add(server: grpc.Server) -> None:
        handlers = {
            "GetHomeFeed": grpc.unary_unary_rpc_method_handler(
                servicer.home_feed_bytes,
                request_deserializer=feed_pb2.GetHomeFeedRequest.FromString,
                response_serializer=_pre_serialized),
            "GetNicheFeed": grpc.unary_unary_rpc_method_handler(
                servicer.niche_feed_bytes,
                request_deserializer=feed_pb2.GetNicheFeedRequest.FromString,
                response_serializer=_pre_serialized),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE,
                                                                              handlers),))
        server.add_registered_method_handlers(SERVICE, handlers)
    return add
