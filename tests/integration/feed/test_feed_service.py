"""FeedService over real gRPC, fed by the real worker from real graph and post services."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from kith.common.rpc import error_info
from kith.feed.entrypoint import SPEC as FEED
from kith.feed.entrypoint import fanout_runner
from kith.graph.entrypoint import SPEC as GRAPH
from kith.identity.entrypoint import SPEC as IDENTITY
from kith.post.entrypoint import SPEC as POST
from kith.protos import (
    feed_pb2,
    feed_pb2_grpc,
    graph_pb2,
    graph_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
    post_pb2,
    post_pb2_grpc,
)
from tests.support.rpc import channel
from tests.support.waiting import eventually


@pytest.fixture
def world(stack) -> Iterator[dict[str, Any]]:
    for spec in (IDENTITY, GRAPH, POST, FEED):
        stack.start(spec)
    runner = fanout_runner(stack.settings, batch_size=50)
    stop = threading.Event()
    worker = threading.Thread(target=runner.run, args=(stop,))
    worker.start()
    addr = stack.settings.grpc_addr
    with channel(addr("identity")) as i, channel(addr("graph")) as g, \
            channel(addr("post")) as p, channel(addr("feed")) as f:
        yield {"identity": identity_pb2_grpc.IdentityServiceStub(i),
               "graph": graph_pb2_grpc.GraphServiceStub(g),
               "post": post_pb2_grpc.PostServiceStub(p),
               "feed": feed_pb2_grpc.FeedServiceStub(f)}
    stop.set()
    worker.join(30)




def register(world: dict[str, Any], name: str) -> str:
    profile = world["identity"].Register(identity_pb2.RegisterRequest(
        username=f"{name}{uuid.uuid4().hex[:8]}", password="correct horse battery",
        display_name=name.title()))
    return profile.id


def test_feeds_are_hydrated_paginated_and_private(world: dict[str, Any]) -> None:
    graph, post, feed = world["graph"], world["post"], world["feed"]
    alice, bob, dave = (register(world, n) for n in ("alice", "bob", "dave"))
    niche = graph.CreateNiche(graph_pb2.CreateNicheRequest(
        actor_id=alice, name="Book circle", kind="book_club")).id
    code = graph.CreateInvite(graph_pb2.CreateInviteRequest(actor_id=alice, niche_id=niche)).code
    graph.AcceptInvite(graph_pb2.AcceptInviteRequest(actor_id=bob, code=code))
    posted = [post.Publish(post_pb2.PublishRequest(actor_id=author, niche_id=niche,
                                                   text=f"post {i}"))
              for i, author in enumerate((alice, alice, bob, alice))]

    def home(viewer: str, limit: int = 0, cursor: str = "") -> feed_pb2.FeedPage:
        return feed.GetHomeFeed(feed_pb2.GetHomeFeedRequest(viewer_id=viewer, limit=limit,
                                                            cursor=cursor))

    page = eventually(lambda: home(bob), lambda page: len(page.items) == 4)
    assert [i.id for i in page.items] == [p.id for p in reversed(posted)]
    assert page.items[0].author_display_name == "Alice" and page.items[0].text == "post 3"
    assert page.items[1].author_display_name == "Bob" and page.next_cursor == ""

    first = home(bob, limit=3)
    rest = home(bob, limit=3, cursor=first.next_cursor)
    assert [i.id for i in (*first.items, *rest.items)] == [p.id for p in reversed(posted)]
    assert rest.next_cursor == ""
    niche_page = feed.GetNicheFeed(feed_pb2.GetNicheFeedRequest(viewer_id=bob, niche_id=niche,
                                                                limit=2))
    assert [i.id for i in niche_page.items] == [posted[3].id, posted[2].id]

    post.Edit(post_pb2.EditRequest(actor_id=alice, post_id=posted[3].id, text="edited"))
    eventually(lambda: home(bob), lambda page: page.items[0].text == "edited")

    with pytest.raises(grpc.RpcError) as exc:
        feed.GetNicheFeed(feed_pb2.GetNicheFeedRequest(viewer_id=dave, niche_id=niche))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert home(dave).items == []
    with pytest.raises(grpc.RpcError) as exc:
        home(bob, limit=500)
    status, _, _, details = error_info(exc.value)
    assert status == grpc.StatusCode.INVALID_ARGUMENT and "limit" in details

    graph.Block(graph_pb2.BlockRequest(actor_id=bob, user_id=alice))

    def feeds() -> tuple[list[str], list[str]]:
        return [i.id for i in home(bob).items], [i.id for i in home(alice).items]

    eventually(feeds, lambda seen: seen == ([posted[2].id],
                                           [posted[3].id, posted[1].id, posted[0].id]))
