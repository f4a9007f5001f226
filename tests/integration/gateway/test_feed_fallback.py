"""A feed page comes rendered from feed itself (``FeedPage.items_json``, names and photos
included); a gateway facing an older feed server (a rolling deploy where the gateway goes
first) answers the same page: from ``FeedItem`` messages for a server older than ``json``,
and for one older than ``FeedPage.hydrated`` also asking graph for personas and media for
photos as before."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from kith.protos import feed_pb2, feed_pb2_grpc
from tests.integration.gateway.harness import Client, Gateway, served_gateway
from tests.integration.gateway.test_niche_profiles import put_profile
from tests.integration.gateway.test_typed_posts import feed_item, niche
from tests.integration.media.test_media_photos import uploaded
from tests.support.waiting import eventually


class OlderFeed(feed_pb2_grpc.FeedServiceServicer):
    """A FeedService answering as one built before ``json`` (which it ignores: pages of
    ``FeedItem`` messages) and, unless ``hydrated``, before ``names``, ``media`` and
    ``hydrated`` too: the current feed's pages with those fields left empty."""

    def __init__(self, feed: feed_pb2_grpc.FeedServiceStub, hydrated: bool) -> None:
        self.feed = feed
        self.hydrated = hydrated

    @staticmethod
    def _passed_on(context: grpc.ServicerContext) -> list[tuple[str, str | bytes]]:
        """The caller's metadata (its actor assertion, request id) for the current feed."""
        return [(m.key, m.value) for m in context.invocation_metadata()
                if m.key != "user-agent" and not m.key.startswith(("grpc-", ":"))]

    def _older(self, page: feed_pb2.FeedPage) -> feed_pb2.FeedPage:
        assert not page.items_json
        if self.hydrated:
            return page
        page.hydrated = False
        for item in page.items:
            item.ClearField("names")
            item.ClearField("media")
        return page

    def GetHomeFeed(self, request: feed_pb2.GetHomeFeedRequest,
                    context: grpc.ServicerContext) -> feed_pb2.FeedPage:
        request.ClearField("json")  # unknown to it
        return self._older(self.feed.GetHomeFeed(request, metadata=self._passed_on(context)))

    def GetNicheFeed(self, request: feed_pb2.GetNicheFeedRequest,
                     context: grpc.ServicerContext) -> feed_pb2.FeedPage:
        request.ClearField("json")
        return self._older(self.feed.GetNicheFeed(request, metadata=self._passed_on(context)))


@pytest.fixture(params=[True, False], ids=["before-json", "before-hydrated"])
def older_gateway(gateway: Gateway, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second gateway over the same stack whose feed is an :class:`OlderFeed`."""
    settings = gateway.settings
    with grpc.insecure_channel(settings.grpc_addr("feed")) as current:
        server = grpc.server(futures.ThreadPoolExecutor(4))
        feed_pb2_grpc.add_FeedServiceServicer_to_server(
            OlderFeed(feed_pb2_grpc.FeedServiceStub(current), request.param), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            older = dataclasses.replace(settings, grpc_addrs={
                **settings.grpc_addrs, "feed": f"127.0.0.1:{port}"})
            with served_gateway(older) as url:
                yield url
        finally:
            server.stop(None)


def test_an_older_feed_server_gets_the_same_page(
        gateway: Gateway, older_gateway: str) -> None:
    ann, ben = gateway.signup("ann"), gateway.signup("ben")
    swap = niche(ann, "skills", ben)
    put_profile(ben, swap, display_name="Benji the Wrench")
    photo = uploaded(ben)
    posted = ben.post(f"/v1/niches/{swap}/posts", {"text": "spare wheel", "media_ids": [photo]})
    assert posted.status_code == 201, posted.text

    current = feed_item(ann, swap, posted.json()["id"])
    assert current["author"]["display_name"] == "Benji the Wrench"
    assert [m["id"] for m in current["media"]] == [photo]
    assert current["media"][0]["url"] == f"/v1/media/{photo}?size=display"

    ann_there = Client(older_gateway, ann.token, ann.user_id, ann.username)
    for path in ("/v1/feed", f"/v1/niches/{swap}/feed"):
        mine = eventually(lambda path=path: ann.get(path).json()["items"],
                          lambda items: items and items[0]["media"])
        assert ann_there.get(path).json()["items"] == mine
