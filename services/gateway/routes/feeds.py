"""The home feed and niche feeds (feed), newest first."""

from __future__ import annotations

from kith.gateway import render
from kith.gateway.media import photo, photos_of, with_photos
from kith.gateway.operations import api
from kith.gateway.pagination import PAGE_QUERY, open_cursor, seal_cursor
from kith.gateway.profiles import display_names, personas
from kith.gateway.views import Call, Reply
from kith.protos import feed_pb2

TAG = "feeds"


def _page(call: Call, page: feed_pb2.FeedPage, listing: str) -> Reply:
    next_cursor = seal_cursor(call.gw.cursors, page.next_cursor, listing)
    if page.hydrated:  # feed named people as each niche shows them and attached the photos
        return Reply(200, {"items": [{**render.feed_item(i, i.names),
                                      "media": [photo(m) for m in i.media]}
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
    return Reply(200, {"items": with_photos([render.feed_item(i, named(i)) for i in page.items],
                                            photos),
                       "next_cursor": next_cursor})


def _cursor(call: Call, listing: str) -> str:
    after = open_cursor(call.gw.cursors, call.query.get("cursor"), listing)
    return after if isinstance(after, str) else ""


@api.operation("GET", "/v1/feed", summary="My home feed: every niche of mine, newest first",
               tag=TAG, query=PAGE_QUERY, response=render.list_of(render.POST))
def home_feed(call: Call) -> Reply:
    page = call.rpc(call.gw.clients.feed.GetHomeFeed, feed_pb2.GetHomeFeedRequest(
        viewer_id=call.user_id, limit=call.query["limit"], cursor=_cursor(call, "home")))
    return _page(call, page, "home")


@api.operation("GET", "/v1/niches/{niche_id}/feed", summary="One niche's feed, newest first",
               tag=TAG, query=PAGE_QUERY, response=render.list_of(render.POST))
def niche_feed(call: Call) -> Reply:
    listing = f"niche:{call.params['niche_id']}"
    page = call.rpc(call.gw.clients.feed.GetNicheFeed, feed_pb2.GetNicheFeedRequest(
        viewer_id=call.user_id, niche_id=call.params["niche_id"], limit=call.query["limit"],
        cursor=_cursor(call, listing)))
    return _page(call, page, listing)
