"""A feed page carries names and photos from feed itself; a gateway facing a feed server older
than ``FeedPage.hydrated`` (a rolling deploy where the gateway goes first) asks graph for
personas and media for photos as before, and answers the same page."""

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
    """A FeedService answering as one built before ``names``, ``media`` and ``hydrated``:
    the current feed's pages with those fields left empty."""

    def __init__(self, feed: feed_pb2_grpc.FeedServiceStub) -> None:
        self.feed = feed

    @staticmethod
    def _passed_on(context: grpc.ServicerContext) -> list[tuple[str, str | bytes]]:
        """The caller's metadata (its actor assertion, request id) for the current feed."""
        return [(m.key, m.value) for m in context.invocation_metadata()
                if m.key != "user-agent" and not m.key.startswith(("grpc-", ":"))]

    @staticmethod
    def _older(page: feed_pb2.FeedPage) -> feed_pb2.FeedPage:
        page.hydrated = False
        for item in page.items:
            item.ClearField("names")
            item.ClearField("media")
        return page

    def GetHomeFeed(self, request: feed_pb2.GetHomeFeedRequest,
                    context: grpc.ServicerContext) -> feed_pb2.FeedPage:
        return self._older(self.feed.GetHomeFeed(request, metadata=self._passed_on(context)))

    def GetNicheFeed(self, request: feed_pb2.GetNicheFeedRequest,
                     context: grpc.ServicerContext) -> feed_pb2.FeedPage:
        return self._older(self.feed.GetNicheFeed(request, metadata=self._passed_on(context)))


@pytest.fixture
def older_gateway(gateway: Gateway) -> Iterator[str]:
    """A second gateway over the same stack whose feed is an :class:`OlderFeed`."""
    settings = gateway.settings
    with grpc.insecure_channel(settings.grpc_addr("feed")) as current:
        server = grpc.server(futures.ThreadPoolExecutor(4))
        feed_pb2_grpc.add_FeedServiceServicer_to_server(
            OlderFeed(feed_pb2_grpc.FeedServiceStub(current)), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            older = dataclasses.replace(settings, grpc_addrs={
                **settings.grpc_addrs, "feed": f"127.0.0.1:{port}"})
            with served_gateway(older) as url:
                yield url
        finally:
            server.stop(None)


def test_an_older_feed_server_gets_the_same_page_through_graph_and_media(
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
