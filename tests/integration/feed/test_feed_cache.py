"""One hop for a feed page: pages served from the feed's in-memory cache, evicted by events.

A page held whole is served as each post's cached serialized item plus the viewer's own
reactions; these stories read the pages back through the real gRPC stub, so every change
below must reach those bytes as well.

The fan-out worker is stopped once the feeds are built, so the feed's own tables
keep listing every entry and membership: whatever disappears from a page after
that disappears because the cache's event tail evicted it and post (asked again,
against graph's current truth) withheld it.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any, cast

import orjson
import pytest
from PIL import Image

from kith.feed import entrypoint as feed_entrypoint
from kith.feed.entrypoint import SPEC as FEED
from kith.feed.entrypoint import fanout_runner
from kith.feed.hydration import HydrationCache
from kith.graph.entrypoint import SPEC as GRAPH
from kith.identity.entrypoint import SPEC as IDENTITY
from kith.media.entrypoint import SPEC as MEDIA
from kith.post.entrypoint import SPEC as POST
from kith.protos import (
    feed_pb2,
    feed_pb2_grpc,
    graph_pb2,
    graph_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
    post_pb2,
    post_pb2_grpc,
)
from tests.integration.media.test_media_service import chunked
from tests.support.environment import ServiceStack
from tests.support.rpc import channel
from tests.support.waiting import eventually

PASSWORD = "correct horse battery"


@pytest.fixture
def world(stack: ServiceStack) -> Iterator[dict[str, Any]]:
    for spec in (IDENTITY, GRAPH, POST, MEDIA, FEED):
        stack.start(spec)
    runner = fanout_runner(stack.settings, batch_size=50)
    stop = threading.Event()
    worker = threading.Thread(target=runner.run, args=(stop,))
    worker.start()
    addr = stack.settings.grpc_addr

    def stop_worker() -> None:
        stop.set()
        worker.join(30)
    with channel(addr("identity")) as i, channel(addr("graph")) as g, \
            channel(addr("post")) as p, channel(addr("media")) as m, \
            channel(addr("feed")) as f:
        yield {"identity": identity_pb2_grpc.IdentityServiceStub(i),
               "graph": graph_pb2_grpc.GraphServiceStub(g),
               "post": post_pb2_grpc.PostServiceStub(p),
               "media": media_pb2_grpc.MediaServiceStub(m),
               "feed": feed_pb2_grpc.FeedServiceStub(f),
               "stop_worker": stop_worker,
               "cache": feed_entrypoint.cache_of(stack.settings)}
    stop_worker()


def register(world: dict[str, Any], name: str) -> str:
    return world["identity"].Register(identity_pb2.RegisterRequest(
        username=f"{name}{uuid.uuid4().hex[:8]}", password=PASSWORD,
        display_name=name.title())).id


def test_pages_come_from_memory_and_every_change_evicts_before_it_is_read(
        world: dict[str, Any]) -> None:
    graph, post, feed = world["graph"], world["post"], world["feed"]
    cache: HydrationCache = world["cache"]
    alice, bob, carol, dave = (register(world, n) for n in ("alice", "bob", "carol", "dave"))
    niche = graph.CreateNiche(graph_pb2.CreateNicheRequest(
        actor_id=alice, name="Allotment", kind="friends")).id
    for who in (bob, carol, dave):
        code = graph.CreateInvite(graph_pb2.CreateInviteRequest(actor_id=alice,
                                                                niche_id=niche)).code
        graph.AcceptInvite(graph_pb2.AcceptInviteRequest(actor_id=who, code=code))
    by_alice = post.Publish(post_pb2.PublishRequest(actor_id=alice, niche_id=niche,
                                                    text="beans are up")).id
    by_carol = post.Publish(post_pb2.PublishRequest(actor_id=carol, niche_id=niche,
                                                    text="slugs again")).id
    by_bob = post.Publish(post_pb2.PublishRequest(actor_id=bob, niche_id=niche,
                                                  text="rain tomorrow")).id

    def home(viewer: str) -> dict[str, feed_pb2.FeedItem]:
        return {i.id: i for i in feed.GetHomeFeed(
            feed_pb2.GetHomeFeedRequest(viewer_id=viewer)).items}

    def ids(viewer: str) -> set[str]:
        return set(home(viewer))

    def home_json(viewer: str) -> dict[str, dict[str, Any]]:
        """The page as the gateway asks for it: items rendered in API.md's JSON."""
        page = feed.GetHomeFeed(feed_pb2.GetHomeFeedRequest(viewer_id=viewer, json=True))
        assert not page.items
        return {i["id"]: i for i in orjson.loads(page.items_json)}

    everything = {by_alice, by_carol, by_bob}
    for viewer in (alice, bob, carol, dave):
        eventually(partial(ids, viewer), lambda found: found == everything)
    world["stop_worker"]()  # from here on the feed's tables list all three posts to everyone
    eventually(cache.fresh)
    # However busy this machine, pages below may be served from memory: only eviction
    # (never the lag gate's fallback) keeps them right.
    cache.max_lag_s = 60.0

    # A page read twice: the second is served from memory (post and identity not asked),
    # each item as the bytes the first read encoded.
    home(bob)
    hits = cache.hits
    page = home(bob)
    assert cache.hits == hits + 3 and cache.sizes()["items"] == 3
    assert page[by_carol].author_display_name == "Carol" and page[by_carol].text == "slugs again"
    assert dict(page[by_carol].names) == {carol: "Carol"}
    hits = cache.hits
    rendered = home_json(bob)  # the same cached items, as JSON
    assert cache.hits == hits + 3
    assert rendered[by_carol]["author"] == {"id": carol, "display_name": "Carol"}
    assert rendered[by_carol]["text"] == "slugs again" and rendered[by_carol]["media"] == []

    # Per-viewer fields are per viewer: bob's reaction is his, and evicts the post for all.
    post.AddReaction(post_pb2.ReactionRequest(actor_id=bob, post_id=by_alice, kind="love"))
    eventually(lambda: list(home(bob)[by_alice].my_reactions), lambda found: found == ["love"])
    hits = cache.hits
    assert list(home(bob)[by_alice].my_reactions) == ["love"] and cache.hits == hits + 3
    assert list(home(carol)[by_alice].my_reactions) == []
    assert dict(home(carol)[by_alice].reactions) == {"love": 1}
    assert home_json(bob)[by_alice]["my_reactions"] == ["love"]
    assert home_json(carol)[by_alice]["my_reactions"] == []
    assert home_json(carol)[by_alice]["reactions"] == {"love": 1}

    # A display name changed: the items showing it (author, names) are encoded afresh.
    world["identity"].UpdateProfile(identity_pb2.UpdateProfileRequest(
        actor_id=carol, display_name="Caroline"))
    eventually(lambda: home(bob)[by_carol].author_display_name,
               lambda found: found == "Caroline")
    assert dict(home(dave)[by_carol].names) == {carol: "Caroline"}
    assert home_json(dave)[by_carol]["author"]["display_name"] == "Caroline"

    # An edit: the next pages show it; a delete: gone although feed's tables still list it.
    post.Edit(post_pb2.EditRequest(actor_id=alice, post_id=by_alice, text="beans are flowering"))
    eventually(lambda: home(bob)[by_alice].text, lambda found: found == "beans are flowering")
    assert home(dave)[by_alice].text == "beans are flowering"
    assert home_json(dave)[by_alice]["text"] == "beans are flowering"
    assert home_json(dave)[by_alice]["edited_at"] is not None
    post.Delete(post_pb2.DeleteRequest(actor_id=bob, post_id=by_bob))
    eventually(lambda: ids(carol), lambda found: found == {by_alice, by_carol})
    assert set(home_json(carol)) == {by_alice, by_carol}

    # A leave and a block are enforced on feed reads without the worker's projection.
    home(dave)
    graph.RemoveMember(graph_pb2.RemoveMemberRequest(actor_id=dave, niche_id=niche,
                                                     user_id=dave))
    eventually(lambda: ids(dave), lambda found: found == set())
    graph.Block(graph_pb2.BlockRequest(actor_id=bob, user_id=carol))
    eventually(lambda: ids(bob), lambda found: found == {by_alice})
    assert ids(alice) == {by_alice, by_carol}

    # An erased account: its posts and its name leave every page (the encoded items too).
    world["identity"].DeleteAccount(identity_pb2.DeleteAccountRequest(actor_id=carol,
                                                                      password=PASSWORD))
    eventually(lambda: ids(alice), lambda found: found == {by_alice})
    assert set(home_json(alice)) == {by_alice}
    eventually(lambda: cache.posts(alice, [by_carol]) == {} and cache.names([carol]) == {})
    assert cache.items(alice, [by_carol]) == {}


def test_a_page_takes_the_synchronous_path_while_the_tail_is_behind(
        world: dict[str, Any]) -> None:
    graph, post, feed = world["graph"], world["post"], world["feed"]
    cache: HydrationCache = world["cache"]
    alice = register(world, "alice")
    niche = graph.CreateNiche(graph_pb2.CreateNicheRequest(
        actor_id=alice, name="Choir", kind="friends")).id
    sung = post.Publish(post_pb2.PublishRequest(actor_id=alice, niche_id=niche,
                                                text="tenor line")).id

    def texts() -> list[str]:
        return [i.text for i in feed.GetHomeFeed(
            feed_pb2.GetHomeFeedRequest(viewer_id=alice)).items]

    eventually(lambda: texts(), lambda found: found == ["tenor line"])
    eventually(cache.fresh)
    texts()  # cached now
    cache.max_lag_s = -1.0  # the tail can no longer prove it is caught up
    hits = cache.hits
    post.Edit(post_pb2.EditRequest(actor_id=alice, post_id=sung, text="alto line"))
    eventually(lambda: texts(), lambda found: found == ["alto line"])
    assert cache.hits == hits  # every page asked post


def test_personas_and_photos_come_with_the_page_and_their_changes_evict_them(
        world: dict[str, Any]) -> None:
    graph, post, media, feed = world["graph"], world["post"], world["media"], world["feed"]
    cache: HydrationCache = world["cache"]
    ann, ben = register(world, "ann"), register(world, "ben")
    swap = graph.CreateNiche(graph_pb2.CreateNicheRequest(
        actor_id=ann, name="Bike swap", kind="skills")).id
    code = graph.CreateInvite(graph_pb2.CreateInviteRequest(actor_id=ann, niche_id=swap)).code
    graph.AcceptInvite(graph_pb2.AcceptInviteRequest(actor_id=ben, code=code))
    wheel = post.Publish(post_pb2.PublishRequest(actor_id=ben, niche_id=swap,
                                                 text="spare wheel, anyone?")).id

    def item() -> feed_pb2.FeedItem:
        (found,) = feed.GetHomeFeed(feed_pb2.GetHomeFeedRequest(viewer_id=ann)).items
        return found

    def rendered() -> dict[str, Any]:
        """The item as the gateway asks for it: API.md's JSON."""
        page = feed.GetHomeFeed(feed_pb2.GetHomeFeedRequest(viewer_id=ann, json=True))
        (found,) = orjson.loads(page.items_json)
        return cast(dict[str, Any], found)

    def persona(name: str) -> None:
        graph.PutProfile(graph_pb2.PutProfileRequest(actor_id=ben, niche_id=swap,
                                                     display_name=name))

    eventually(lambda: feed.GetHomeFeed(feed_pb2.GetHomeFeedRequest(viewer_id=ann)).items,
               lambda found: len(found) == 1)
    world["stop_worker"]()
    eventually(cache.fresh)
    cache.max_lag_s = 60.0  # only eviction keeps the pages below right

    # One call answers the page: names as the niche shows them, and the photos (none yet).
    page = feed.GetHomeFeed(feed_pb2.GetHomeFeedRequest(viewer_id=ann))
    assert page.hydrated and dict(page.items[0].names) == {ben: "Ben"}
    assert list(page.items[0].media) == []
    assert cache.personas([(swap, ben)]) == {(swap, ben): ""}  # "no persona" is kept too
    assert cache.photos([wheel]) == {wheel: ()}

    # A persona set, changed, removed: the next pages follow each.
    persona("Benji the Wrench")
    eventually(lambda: dict(item().names), lambda found: found == {ben: "Benji the Wrench"})
    hits = cache.hits
    assert dict(item().names) == {ben: "Benji the Wrench"} and cache.hits == hits + 1
    assert rendered()["author"] == {"id": ben, "display_name": "Benji the Wrench"}
    persona("")
    eventually(lambda: dict(item().names), lambda found: found == {ben: "Ben"})
    assert rendered()["author"]["display_name"] == "Ben"

    # A photo attached after the page was read (the gateway attaches right after a create).
    out = io.BytesIO()
    Image.effect_noise((120, 90), 60).convert("RGB").save(out, "JPEG")
    uploaded = media.Upload(chunked(ben, out.getvalue()))
    claim = str(uuid.uuid4())
    media.Claim(media_pb2.ClaimRequest(actor_id=ben, claim_id=claim, media_ids=[uploaded.id]))
    media.Attach(media_pb2.AttachRequest(actor_id=ben, claim_id=claim,
                                         carrier=media_pb2.Carrier(kind="post", id=wheel)))
    eventually(lambda: [(m.id, m.width, m.height) for m in item().media],
               lambda found: found == [(uploaded.id, 120, 90)])
    assert cache.photos([wheel])[wheel][0].id == uploaded.id
    assert rendered()["media"] == [{
        "id": uploaded.id, "width": 120, "height": 90, "content_type": "image/jpeg",
        "url": f"/v1/media/{uploaded.id}?size=display",
        "thumb_url": f"/v1/media/{uploaded.id}?size=thumb"}]

    # Ben leaves the niche: his persona there is no longer shown, although his post stays.
    persona("Benji the Wrench")
    eventually(lambda: dict(item().names), lambda found: found == {ben: "Benji the Wrench"})
    graph.RemoveMember(graph_pb2.RemoveMemberRequest(actor_id=ben, niche_id=swap, user_id=ben))
    eventually(lambda: dict(item().names), lambda found: found == {ben: "Ben"})
    assert rendered()["author"]["display_name"] == "Ben"

    # Deleting the post detaches its photos: post and photos leave the page and the cache.
    post.Delete(post_pb2.DeleteRequest(actor_id=ann, post_id=wheel))
    eventually(lambda: feed.GetHomeFeed(feed_pb2.GetHomeFeedRequest(viewer_id=ann)).items,
               lambda found: len(found) == 0)
    assert cache.photos([wheel]) == {}
