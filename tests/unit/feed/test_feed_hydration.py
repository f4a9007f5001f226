"""The feed's in-memory hydration cache: per-viewer hits, eviction before the next read, the
lag gate, and fills that raced an eviction; personas per (niche, member) and photos per post."""

from __future__ import annotations

import uuid

from kith.common.contracts import (
    ACCOUNT_DELETED,
    MEDIA_ATTACHED,
    MEDIA_DETACHED,
    MEDIA_PURGED,
    MEMBER_JOINED,
    MEMBER_LEFT,
    MEMBER_PROFILE_CHANGED,
    NICHE_ARCHIVED,
    USER_BLOCKED,
)
from kith.common.kafka import EventEnvelope
from kith.feed.application import FeedItem, Photo, PostView
from kith.feed.hydration import HydrationCache
from kith.protos import post_pb2

POSTS, IDENTITY, GRAPH = "post.events.v1", "identity.events.v1", "graph.events.v1"
MEDIA = "media.events.v1"
NICHE = str(uuid.uuid4())
ALICE, BOB, CAROL, DAVE = (str(uuid.uuid4()) for _ in range(4))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def view(author: str = ALICE, text: str = "hello", mine: tuple[str, ...] = (),
         cacheable: bool = True, post_id: str | None = None) -> PostView:
    return PostView(post_id or str(uuid.uuid4()), NICHE, author, text, 1, 0, {"like": 1},
                    list(mine), 0, None, cacheable)


def event(topic: str, stream: str, event_type: str = "x") -> EventEnvelope:
    return EventEnvelope(topic, 0, 0, uuid.UUID(stream), uuid.uuid4(), event_type, 1, 1, b"", {})


def apply(cache: HydrationCache, envelope: EventEnvelope, data: dict | None = None) -> None:
    cache.on_event(envelope, lambda: data or {}, POSTS, IDENTITY, MEDIA)


def photo(uploader: str = BOB) -> Photo:
    return Photo(str(uuid.uuid4()), uploader, "image/jpeg", 120, 90, 2048, 1)


def keep(cache: HydrationCache, personas: dict | None = None, photos: dict | None = None
         ) -> None:
    token = cache.begin()
    cache.store_personas(token, personas or {})
    cache.store_photos(token, photos or {})
    cache.end(token)


def fill(cache: HydrationCache, viewer: str, *views: PostView) -> None:
    token = cache.begin()
    cache.store_posts(token, viewer, views)
    cache.end(token)


def test_a_post_is_served_only_to_viewers_post_answered_with_their_own_reactions() -> None:
    cache = HydrationCache()
    p = view(mine=("like",))
    fill(cache, BOB, p)
    assert cache.posts(BOB, [p.id]) == {p.id: p}
    assert cache.posts(CAROL, [p.id]) == {}  # never asked of post for carol: a miss
    fill(cache, CAROL, view(post_id=p.id))
    assert cache.posts(CAROL, [p.id])[p.id].my_reactions == []
    assert cache.posts(BOB, [p.id])[p.id].my_reactions == ["like"]


def test_any_event_of_a_post_evicts_it_and_account_deletion_evicts_everything() -> None:
    cache = HydrationCache()
    p, q = view(), view(author=BOB)
    fill(cache, BOB, p, q)
    token = cache.begin()
    cache.store_names(token, {ALICE: "Alice", BOB: "Bob"})
    cache.end(token)
    apply(cache, event(POSTS, p.id, "kith.post.PostEdited"))
    assert set(cache.posts(BOB, [p.id, q.id])) == {q.id}
    apply(cache, event(IDENTITY, ALICE, "kith.identity.ProfileUpdated"))
    assert cache.names([ALICE, BOB]) == {BOB: "Bob"}
    apply(cache, event(IDENTITY, CAROL, ACCOUNT_DELETED))
    assert cache.posts(BOB, [q.id]) == {} and cache.names([BOB]) == {}


def test_a_leave_or_a_block_forgets_exactly_the_viewers_it_concerns() -> None:
    cache = HydrationCache()
    by_alice, by_carol = view(), view(author=CAROL)
    fill(cache, BOB, by_alice, by_carol)
    fill(cache, CAROL, by_alice, by_carol)
    apply(cache, event(GRAPH, BOB, USER_BLOCKED), {"blocker_id": BOB, "blocked_id": ALICE})
    assert set(cache.posts(BOB, [by_alice.id, by_carol.id])) == {by_carol.id}
    assert len(cache.posts(CAROL, [by_alice.id, by_carol.id])) == 2
    apply(cache, event(GRAPH, NICHE, MEMBER_LEFT), {"niche_id": NICHE, "user_id": CAROL})
    assert cache.posts(CAROL, [by_alice.id, by_carol.id]) == {}
    assert set(cache.posts(BOB, [by_carol.id])) == {by_carol.id}


def test_a_fill_that_began_before_an_eviction_is_not_stored() -> None:
    cache = HydrationCache()
    p = view(text="before the edit")
    token = cache.begin()  # post answered with the old text …
    apply(cache, event(POSTS, p.id, "kith.post.PostEdited"))  # … the edit's event applied …
    cache.store_posts(token, BOB, [p])  # … then the stale answer arrives
    cache.end(token)
    assert cache.posts(BOB, [p.id]) == {}
    token = cache.begin()
    apply(cache, event(GRAPH, NICHE, MEMBER_LEFT), {"niche_id": NICHE, "user_id": CAROL})
    cache.store_posts(token, BOB, [view()])  # a graph change drops every fill in flight
    cache.store_names(token, {ALICE: "Alice"})
    cache.end(token)
    assert cache.size() == (0, 0)


def test_a_fill_that_began_after_an_eviction_is_stored_while_others_are_in_flight() -> None:
    cache = HydrationCache()
    p = view(text="after the edit")
    slow = cache.begin()  # another page's fill, still waiting on post
    apply(cache, event(POSTS, p.id, "kith.post.PostEdited"))
    fill(cache, BOB, p)  # began after the edit was applied: post answered the new text
    assert cache.posts(BOB, [p.id]) == {p.id: p}
    cache.end(slow)


def test_posts_post_tailors_per_viewer_are_never_cached() -> None:
    cache = HydrationCache()
    answered = view(cacheable=False)  # an ask whose answer post hides across blocks
    fill(cache, BOB, answered)
    assert cache.posts(BOB, [answered.id]) == {}


def test_the_cache_is_used_only_while_the_tail_is_caught_up() -> None:
    clock = Clock()
    cache = HydrationCache(max_lag_s=0.1, clock=clock)
    assert not cache.fresh()  # the tail has not reached the end yet
    cache.caught_up()
    assert cache.fresh()
    clock.now += 0.15  # no proof of being at the end for longer than the bound
    assert not cache.fresh()
    cache.caught_up()
    cache.stale()
    assert not cache.fresh()


def test_the_cache_is_bounded_least_recently_read_first() -> None:
    cache = HydrationCache(max_posts=2)
    a, b, c = view(), view(), view()
    fill(cache, BOB, a, b)
    cache.posts(BOB, [a.id])
    fill(cache, BOB, c)
    assert set(cache.posts(BOB, [a.id, b.id, c.id])) == {a.id, c.id}


def test_personas_are_kept_per_niche_and_member_and_every_change_there_evicts_them() -> None:
    cache = HydrationCache()
    other = str(uuid.uuid4())
    keep(cache, {(NICHE, BOB): "Benji", (NICHE, CAROL): "", (other, BOB): "Bob B."})
    assert cache.personas([(NICHE, BOB), (NICHE, CAROL)]) == {(NICHE, BOB): "Benji",
                                                             (NICHE, CAROL): ""}
    apply(cache, event(GRAPH, str(uuid.uuid4()), MEMBER_PROFILE_CHANGED),
          {"niche_id": NICHE, "user_id": BOB})  # set, changed or removed: the same event
    assert cache.personas([(NICHE, BOB), (other, BOB)]) == {(other, BOB): "Bob B."}
    apply(cache, event(GRAPH, NICHE, MEMBER_JOINED), {"niche_id": NICHE, "user_id": CAROL})
    assert cache.personas([(NICHE, CAROL)]) == {}  # a rejoin may bring a persona back


def test_a_leave_or_an_archive_drops_every_persona_of_the_niche() -> None:
    cache = HydrationCache()
    other = str(uuid.uuid4())
    keep(cache, {(NICHE, BOB): "Benji", (NICHE, CAROL): "", (other, BOB): "Bob B."})
    # Whoever left, an answer graph gave them just before (no persona: not a member) is
    # not kept for the members who stay.
    apply(cache, event(GRAPH, NICHE, MEMBER_LEFT), {"niche_id": NICHE, "user_id": ALICE})
    assert cache.personas([(NICHE, BOB), (NICHE, CAROL), (other, BOB)]) == {
        (other, BOB): "Bob B."}
    apply(cache, event(GRAPH, other, NICHE_ARCHIVED), {"niche_id": other})
    assert cache.personas([(other, BOB)]) == {}


def test_photos_are_kept_per_post_and_evicted_by_the_posts_and_the_photos_events() -> None:
    cache = HydrationCache()
    shown, bare, gone = photo(), photo(), photo()
    p, q, r, s = (str(uuid.uuid4()) for _ in range(4))
    keep(cache, photos={p: (shown,), q: (), r: (gone,), s: (bare,)})
    assert cache.photos([p, q]) == {p: (shown,), q: ()}  # "no photos" is kept too
    apply(cache, event(MEDIA, str(uuid.uuid4()), MEDIA_ATTACHED), {"carrier_id": q})
    apply(cache, event(MEDIA, gone.id, MEDIA_DETACHED), {"media_id": gone.id, "carrier_id": r})
    apply(cache, event(MEDIA, shown.id, MEDIA_PURGED), {"media_id": shown.id})
    assert cache.photos([p, q, r, s]) == {s: (bare,)}
    apply(cache, event(POSTS, s, "kith.post.PostDeleted"))
    assert cache.photos([s]) == {}


def test_persona_and_photo_fills_that_raced_their_eviction_are_not_stored() -> None:
    cache = HydrationCache()
    p, purged = str(uuid.uuid4()), photo()
    token = cache.begin()  # graph and media answered …
    apply(cache, event(GRAPH, str(uuid.uuid4()), MEMBER_PROFILE_CHANGED),
          {"niche_id": NICHE, "user_id": BOB})  # … then the persona changed …
    apply(cache, event(MEDIA, purged.id, MEDIA_PURGED), {"media_id": purged.id})  # … purged
    cache.store_personas(token, {(NICHE, BOB): "Benji", (NICHE, CAROL): "Caz"})
    cache.store_photos(token, {p: (purged,)})
    cache.end(token)
    assert cache.personas([(NICHE, BOB), (NICHE, CAROL)]) == {(NICHE, CAROL): "Caz"}
    assert cache.photos([p]) == {}
    token = cache.begin()
    apply(cache, event(GRAPH, NICHE, MEMBER_LEFT), {"niche_id": NICHE, "user_id": ALICE})
    cache.store_personas(token, {(NICHE, ALICE): ""})  # asked by a viewer who just left
    cache.end(token)
    assert cache.personas([(NICHE, ALICE)]) == {}


def test_an_erased_account_empties_personas_and_photos_too() -> None:
    cache = HydrationCache()
    p = str(uuid.uuid4())
    keep(cache, {(NICHE, BOB): "Benji"}, {p: (photo(),)})
    apply(cache, event(IDENTITY, BOB, ACCOUNT_DELETED))
    assert cache.sizes() == {"posts": 0, "names": 0, "items": 0, "personas": 0, "photos": 0}


# -- encoded page items: each post's serialized item (no my_reactions) next to its view ------

def shown(cache: HydrationCache, viewer: str, v: PostView, *photos: Photo,
          body: bytes = b"item") -> None:
    """A page showed ``v`` to ``viewer``: its view, then its encoded item, are kept."""
    token = cache.begin()
    cache.store_posts(token, viewer, [v])
    cache.store_items(token, [(FeedItem(v, "Alice", {}, photos), body)])
    cache.end(token)


def test_an_encoded_item_is_served_only_to_viewers_post_answered_with_their_reactions() -> None:
    cache = HydrationCache()
    p = view(mine=("like",))
    shown(cache, BOB, p)
    fill(cache, CAROL, view(post_id=p.id))
    assert cache.items(BOB, [p.id]) == {p.id: (b"item", ("like",))}
    assert cache.items(CAROL, [p.id]) == {p.id: (b"item", ())}
    assert cache.items(DAVE, [p.id]) == {}  # never asked of post for dave
    assert cache.sizes()["items"] == 1


def test_an_item_post_tailored_to_its_viewer_is_never_kept() -> None:
    cache = HydrationCache()
    p = view()
    fill(cache, CAROL, p)  # carol's answer was cacheable: the view is held …
    shown(cache, BOB, view(post_id=p.id, cacheable=False))  # … bob's was tailored to him
    assert cache.items(CAROL, [p.id]) == {}


def test_every_part_of_an_encoded_item_evicts_it_when_it_changes() -> None:
    cache = HydrationCache()
    answered = PostView(str(uuid.uuid4()), NICHE, CAROL, "who welds?", 1, 0, {}, [], 0,
                        post_pb2.Typed(type="ask", answered_by=post_pb2.AnsweredBy(
                            comment_id=str(uuid.uuid4()), author_id=BOB)))
    other_niche = str(uuid.uuid4())
    purged = photo()

    def evicted_by(envelope: EventEnvelope, data: dict | None = None,
                   v: PostView | None = None, *photos: Photo) -> bool:
        v = v or view()
        shown(cache, BOB, v, *photos)
        assert cache.items(BOB, [v.id])
        apply(cache, envelope, data)
        return cache.items(BOB, [v.id]) == {}

    assert evicted_by(event(POSTS, (p := view()).id, "kith.post.ReactionAdded"), None, p)
    assert evicted_by(event(IDENTITY, ALICE, "kith.identity.ProfileUpdated"))  # author's name
    assert evicted_by(event(IDENTITY, BOB, "kith.identity.ProfileUpdated"), None, answered)
    assert evicted_by(event(GRAPH, NICHE, MEMBER_PROFILE_CHANGED),
                      {"niche_id": NICHE, "user_id": ALICE})  # author's persona here
    assert not evicted_by(event(GRAPH, other_niche, MEMBER_PROFILE_CHANGED),
                          {"niche_id": other_niche, "user_id": ALICE})  # … not elsewhere
    assert evicted_by(event(GRAPH, NICHE, MEMBER_JOINED), {"niche_id": NICHE, "user_id": BOB},
                      answered)  # the answerer's persona here
    assert not evicted_by(event(IDENTITY, DAVE, "kith.identity.ProfileUpdated"))
    assert evicted_by(event(MEDIA, str(uuid.uuid4()), MEDIA_ATTACHED),
                      {"carrier_id": (p := view()).id}, p)
    assert evicted_by(event(MEDIA, purged.id, MEDIA_PURGED), {"media_id": purged.id},
                      None, purged)
    assert evicted_by(event(GRAPH, NICHE, MEMBER_LEFT), {"niche_id": NICHE, "user_id": DAVE})
    assert evicted_by(event(GRAPH, NICHE, NICHE_ARCHIVED), {"niche_id": NICHE})
    assert evicted_by(event(IDENTITY, DAVE, ACCOUNT_DELETED))
    assert cache.sizes()["items"] == 0
    assert cache._shown_by == {}  # nothing indexed is left behind


def test_an_item_built_before_any_of_its_parts_was_evicted_is_not_stored() -> None:
    cache = HydrationCache()
    for envelope, data in ((event(IDENTITY, ALICE, "kith.identity.ProfileUpdated"), None),
                           (event(GRAPH, str(uuid.uuid4()), MEMBER_PROFILE_CHANGED),
                            {"niche_id": NICHE, "user_id": ALICE}),
                           (event(MEDIA, str(uuid.uuid4()), MEDIA_DETACHED), "carrier")):
        p = view()
        fill(cache, BOB, p)
        token = cache.begin()  # the page read the view, name, persona and photos …
        apply(cache, envelope, {"carrier_id": p.id} if data == "carrier" else data)  # …
        cache.store_items(token, [(FeedItem(p, "Alice", {}, ()), b"stale")])  # … then stored
        cache.end(token)
        assert cache.items(BOB, [p.id]) == {}


def test_items_leave_with_their_posts_when_the_cache_is_full() -> None:
    cache = HydrationCache(max_posts=2)
    a, b, c = view(), view(), view()
    shown(cache, BOB, a)
    shown(cache, BOB, b)
    shown(cache, BOB, c)
    assert set(cache.items(BOB, [a.id, b.id, c.id])) == {b.id, c.id}
    assert cache._shown_by == {ALICE: {b.id, c.id}}
