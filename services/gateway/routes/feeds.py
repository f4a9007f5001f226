"""The home feed and niche feeds (feed), newest first.

Feed renders a page's items itself (API.md's shape, :mod:`kith.common.post_json`, kept
rendered in its page cache) when asked with ``json``: the gateway writes that JSON
array into its answer as it is. A feed server older than ``json`` answers ``FeedItem``
messages instead, rendered here with the same functions.
"""

from __future__ import annotations

import orjson

from kith.common import post_json
from kith.gateway import render
from kith.gateway.media import photos_of, with_photos
from kith.gateway.operations import api
from kith.gateway.pagination import PAGE_QUERY, open_cursor, seal_cursor
from kith.gateway.profiles import display_names, personas
from kith.gateway.views import Call, Reply
from kith.protos import feed_pb2

TAG = "feeds"
_NO_ITEMS = orjson.Fragment(b"[]")


def _page(call: Call, page: feed_pb2.FeedPage, listing: str) -> Reply:
    next_cursor = seal_cursor(call.gw.cursors, page.next_cursor, listing)
    if not page.items:  # feed rendered them (or the page is empty)
        items = orjson.Fragment(page.items_json) if page.items_json else _NO_ITEMS
        return Reply(200, {"items": items, "next_cursor": next_cursor})
    if page.hydrated:  # a feed server older than `json`: names and photos are there
        return Reply(200, {"items": [post_json.feed_item(i, i.author_display_name, i.names,
                                                         i.my_reactions, i.media)
                                     for i in page.items],
                           "next_cursor": next_cursor})
    # A feed server older than `hydrated`: ask graph for personas and media for photos.
    people = {i.id: [i.author_id, *render.typed_user_ids(i.typed)] for i in page.items}
    found = personas(call, ((i.niche_id, u) for i in page.items for u in people[i.id]))
    answerers = {u for i in page.items for u in people[i.id][1:]}
    names = display_names(call, answerers) if answerers else {}

    def named(i: feed_pb2.FeedItem) -> dict[str, str]:
        return {**names, **{u: found[(i.niche_id, u)] for u in people[i.id]
                            if (i.niche_id, u) in found}}
    photos = photos_of(call, [("post", i.id, "") for i in page.items])
    return Reply(200, {"items": with_photos([post_json.feed_item(i, i.author_display_name,
                                                                 named(i), i.my_reactions)
                                             for i in page.items], photos),
                       "next_cursor": next_cursor})


def _cursor(call: Call, listing: str) -> str:
    after = open_cursor(call.gw.cursors, call.query.get("cursor"), listing)
    return after if isinstance(after, str) else ""


@api.operation("GET", "/v1/feed", summary="My home feed: every niche of mine, newest first",
               tag=TAG, query=PAGE_QUERY, response=render.list_of(render.POST))
def home_feed(call: Call) -> Reply:
    page = call.rpc(call.gw.clients.feed.GetHomeFeed, feed_pb2.GetHomeFeedRequest(
        viewer_id=call.user_id, limit=call.query["limit"], cursor=_cursor(call, "home"),
        json=True))
    return _page(call, page, "home")


@api.operation("GET", "/v1/niches/{niche_id}/feed", summary="One niche's feed, newest first",
               tag=TAG, query=PAGE_QUERY, response=render.list_of(render.POST))
def niche_feed(call: Call) -> Reply:
    listing = f"niche:{call.params['niche_id']}"
    page = call.rpc(call.gw.clients.feed.GetNicheFeed, feed_pb2.GetNicheFeedRequest(
        viewer_id=call.user_id, niche_id=call.params["niche_id"], limit=call.query["limit"],
        cursor=_cursor(call, listing), json=True))
    return _page(call, page, listing)
