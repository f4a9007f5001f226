"""One hop for a feed page: post bodies, names, personas and photos kept in memory,
evicted by events.

The feed server keeps, per process and **in memory only** (post texts, names and
personas are personal data whose keys post, identity and graph hold: nothing here
is written anywhere), what post, identity, graph and media answered for earlier
pages:

* per post, the viewer-independent part of post's answer (text, counts, type
  fields) and, per viewer that read it, ``my_reactions`` — a hit needs both, so
  per-viewer fields are cached per viewer and never shared;
* per user, the account's display name;
* per (niche, member), their persona there or ``""`` for none. Graph answers a
  persona only to members of the niche, so an answer is stored only for the
  niche of a post the same page shows this viewer (post, or the viewer's own
  cached entry, vouched for their membership), and every leave from the niche
  drops all of its personas (an answer given to a viewer who had just left is
  gone with it);
* per post, its photos' descriptors (``MediaInfo``: id, size, type — no URL, no
  bytes; an item links each to the gateway's ``/v1/media/{id}``, where media checks
  each fetch), ``()`` for none. They reach a page only with a post the viewer may see.
* per post, next to its view, the page item as it was last encoded
  (:func:`kith.feed.grpc_api.encode_item`: the view, its author's name, the names
  or personas it shows, its photos — everything but ``my_reactions`` — both as a
  serialized ``FeedItem`` and as API.md's JSON, which the gateway writes into its
  answer as it is). A page whose posts all have one is served from these bytes and
  each viewer's own ``my_reactions`` without any other lookup. An encoding is
  dropped whenever any part of it would be (see below), and is stored only if no
  part was evicted since its page began.

A :class:`CacheFeed` thread in the same process tails the post, identity, graph
and media topics from their end and evicts before the next read is served from
the cache: any event of a post's stream (edit, delete, reaction, comment,
answer) drops that post and its photos; any identity event drops that user's
name; ``AccountDeleted`` drops everything; ``MemberLeft`` drops the leaver's
entries of that niche and the niche's personas, ``UserBlocked`` both users'
entries of each other's posts, ``NicheArchived`` the niche's posts and personas;
``MemberJoined`` and ``MemberProfileChanged`` (a persona set, changed or
removed) that member's persona there; ``MediaAttached``/``MediaDetached`` the
carrier's photos, ``MediaPurged`` every photo list holding that photo. Each of
these also drops the encoded items that showed what it evicted: a name change
those naming the user, a persona change those of the niche naming the member, a
leave or archive those of the niche, a photo change those carrying it. A dropped
entry is a miss, answered by the service that owns it (post's
``BatchGetPosts`` checks graph's current truth, and is not cached if post
withholds it).

The cache is used only while the tail is caught up: :meth:`HydrationCache.fresh`
is false unless the consumer stood at the end of every partition within
``max_lag_s`` — otherwise a page takes the synchronous path (post → graph).
A fill that raced an eviction (its gRPC call began before the event was applied)
is not stored.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, TopicPartition
from prometheus_client import Counter

from kith.common.codec import AvroCodec, default_codec
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
from kith.common.kafka import EventEnvelope, consumer_config
from kith.feed.application import (
    Encoded,
    EncodedItem,
    FeedItem,
    PersonaKey,
    Photo,
    PostView,
    named_users,
)

log = logging.getLogger(__name__)

DEFAULT_POSTS = 20_000
DEFAULT_MAX_LAG_MS = 100
POLL_S = 0.02  # an idle tail proves it is caught up this often

CACHE_LOOKUPS = Counter("kith_feed_cache_lookups_total",
                        "Posts a feed page looked up in the page cache, by result.", ["result"])
CACHE_PAGES = Counter("kith_feed_cache_pages_total",
                      "Feed pages by path: 'cache' (the tail caught up) or 'synchronous'.",
                      ["path"])
CACHE_EVICTIONS = Counter("kith_feed_cache_evictions_total",
                          "Events the page cache's tail acted on, by kind.", ["kind"])
_HITS, _MISSES = CACHE_LOOKUPS.labels("hit"), CACHE_LOOKUPS.labels("miss")
_CACHE_PAGES, _SYNC_PAGES = CACHE_PAGES.labels("cache"), CACHE_PAGES.labels("synchronous")


@dataclass
class _Post:
    view: PostView  # my_reactions emptied: the viewer-independent part
    mine: dict[str, tuple[str, ...]] = field(default_factory=dict)  # viewer → my_reactions
    # The post's encoded page item (no my_reactions) and what it shows besides the view:
    # the names (and personas) of these users, and these photos.
    item: Encoded | None = None
    item_users: tuple[str, ...] = ()
    item_media: tuple[str, ...] = ()


def _persona_key(key: PersonaKey) -> str:
    return f"persona:{key[0]}:{key[1]}"


def _photos_key(post_id: str) -> str:
    return f"photos:{post_id}"


def _media_key(media_id: str) -> str:
    return f"media:{media_id}"


class HydrationCache:
    """Post views, display names, personas and photos, evicted by :class:`CacheFeed`;
    thread-safe. Each kind holds at most ``max_posts`` entries."""

    def __init__(self, max_posts: int = DEFAULT_POSTS, max_lag_s: float = DEFAULT_MAX_LAG_MS / 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_posts = max_posts
        self.max_lag_s = max_lag_s
        self.clock = clock
        self._lock = threading.Lock()
        self._posts: OrderedDict[str, _Post] = OrderedDict()
        self._names: OrderedDict[str, str] = OrderedDict()
        self._personas: OrderedDict[PersonaKey, str] = OrderedDict()
        self._photos: OrderedDict[str, tuple[Photo, ...]] = OrderedDict()
        self._caught_up_at: float | None = None
        self._seq = 0  # bumped by every eviction
        self._evicted: dict[str, int] = {}  # post/user id or *_key() → seq of its last eviction
        self._wide_at = 0  # seq of the last eviction that was not by id (graph events, erasure)
        self._fills: dict[int, int] = {}  # token → fills in flight that began at it
        self._shown_by: dict[str, set[str]] = {}  # user → posts whose encoded item names them
        self.hits = self.misses = 0

    # -- the read side ---------------------------------------------------------------------

    def fresh(self) -> bool:
        """Whether the event tail stood at the end of every partition within ``max_lag_s``."""
        at = self._caught_up_at
        return at is not None and self.clock() - at <= self.max_lag_s

    def admit(self) -> bool:
        """Whether a page may use the cache now (:meth:`fresh`), counted by path."""
        fresh = self.fresh()
        (_CACHE_PAGES if fresh else _SYNC_PAGES).inc()
        return fresh

    def begin(self) -> int:
        """A token for a fill: what it stores is dropped if evicted after this call."""
        with self._lock:
            self._fills[self._seq] = self._fills.get(self._seq, 0) + 1
            return self._seq

    def end(self, token: int) -> None:
        with self._lock:
            left = self._fills[token] - 1
            if left:
                self._fills[token] = left
            else:
                del self._fills[token]
            if not self._fills:
                self._evicted.clear()  # no fill in flight can be older than any of them
            elif len(self._evicted) > 4 * self.max_posts:
                oldest = min(self._fills)
                self._evicted = {k: s for k, s in self._evicted.items() if s > oldest}

    def items(self, viewer: str, post_ids: Iterable[str]) -> dict[str, EncodedItem]:
        """The encoded items of ``post_ids`` that ``viewer`` has read before, each with the
        viewer's own ``my_reactions``; posts without an encoding held are left out (and
        counted by the :meth:`posts` lookup that follows)."""
        found: dict[str, EncodedItem] = {}
        with self._lock:
            posts = self._posts
            for p in post_ids:
                entry = posts.get(p)
                if entry is None or entry.item is None:
                    continue
                mine = entry.mine.get(viewer)
                if mine is None:
                    continue
                posts.move_to_end(p)
                found[p] = (entry.item, mine)
            self.hits += len(found)
        _HITS.inc(len(found))
        return found

    def posts(self, viewer: str, post_ids: Iterable[str]) -> dict[str, PostView]:
        """The cached views of ``post_ids`` that ``viewer`` has read before, as post gave them."""
        found: dict[str, PostView] = {}
        wanted = list(post_ids)
        with self._lock:
            for p in wanted:
                entry = self._posts.get(p)
                if entry is None or viewer not in entry.mine:
                    continue
                self._posts.move_to_end(p)
                found[p] = entry.view.with_reactions(list(entry.mine[viewer]))
            self.hits += len(found)
            self.misses += len(wanted) - len(found)
        _HITS.inc(len(found))
        _MISSES.inc(len(wanted) - len(found))
        return found

    def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        with self._lock:
            return {u: self._names[u] for u in user_ids if u in self._names}

    def personas(self, keys: Iterable[PersonaKey]) -> dict[PersonaKey, str]:
        """Cached personas (``""``: the member has none there)."""
        with self._lock:
            return {k: self._personas[k] for k in keys if k in self._personas}

    def photos(self, post_ids: Iterable[str]) -> dict[str, tuple[Photo, ...]]:
        with self._lock:
            return {p: self._photos[p] for p in post_ids if p in self._photos}

    def store_personas(self, token: int, personas: dict[PersonaKey, str]) -> None:
        """Keep graph's answers (the caller asked only for niches of posts it shows)."""
        with self._lock:
            if token < self._wide_at:
                return
            for k, name in personas.items():
                if self._evicted.get(_persona_key(k), -1) <= token:
                    self._personas[k] = name
            while len(self._personas) > self.max_posts:
                self._personas.popitem(last=False)

    def store_photos(self, token: int, photos: dict[str, tuple[Photo, ...]]) -> None:
        with self._lock:
            if token < self._wide_at:
                return
            for post_id, found in photos.items():
                if self._evicted.get(_photos_key(post_id), -1) > token or any(
                        self._evicted.get(_media_key(m.id), -1) > token for m in found):
                    continue
                self._photos[post_id] = found
            while len(self._photos) > self.max_posts:
                self._photos.popitem(last=False)

    def store_posts(self, token: int, viewer: str, views: Iterable[PostView]) -> None:
        """Keep what post answered ``viewer`` (unless evicted since ``token``)."""
        with self._lock:
            if token < self._wide_at:
                return
            for v in views:
                if not v.cacheable or self._evicted.get(v.id, -1) > token:
                    continue
                entry = self._posts.get(v.id)
                if entry is None:
                    entry = self._posts[v.id] = _Post(v.with_reactions(()))
                entry.mine[viewer] = tuple(v.my_reactions)
            while len(self._posts) > self.max_posts:
                self._drop_item(*self._posts.popitem(last=False))

    def store_items(self, token: int, items: Iterable[tuple[FeedItem, Encoded]]) -> None:
        """Keep each item's encoding next to its post's view (held, viewer-independent),
        unless the view, a name or persona it shows, or its photos were evicted since
        ``token``: an encoding is only ever as fresh as every part it was built from."""
        with self._lock:
            if token < self._wide_at:
                return
            evicted = self._evicted
            for item, body in items:
                v = item.post
                entry = self._posts.get(v.id)
                if entry is None or not v.cacheable:
                    continue
                users = tuple(named_users(v))
                media = tuple(m.id for m in item.photos)
                keys = [v.id, _photos_key(v.id), *users,
                        *(_persona_key((v.niche_id, u)) for u in users),
                        *(_media_key(m) for m in media)]
                if any(evicted.get(k, -1) > token for k in keys):
                    continue
                self._drop_item(v.id, entry)
                entry.item, entry.item_users, entry.item_media = body, users, media
                for u in users:
                    self._shown_by.setdefault(u, set()).add(v.id)

    def _drop_item(self, post_id: str, entry: _Post) -> None:
        """Forget a post's encoded item (the lock held)."""
        if entry.item is None:
            return
        for u in entry.item_users:
            shown = self._shown_by.get(u)
            if shown is not None:
                shown.discard(post_id)
                if not shown:
                    del self._shown_by[u]
        entry.item, entry.item_users, entry.item_media = None, (), ()

    def _drop_items_naming(self, user_id: str, niche_id: str | None = None) -> None:
        """Forget the encoded items that show ``user_id``'s name (in ``niche_id``, if given)."""
        for post_id in list(self._shown_by.get(user_id, ())):
            entry = self._posts.get(post_id)
            if entry is not None and (niche_id is None or entry.view.niche_id == niche_id):
                self._drop_item(post_id, entry)

    def store_names(self, token: int, names: dict[str, str]) -> None:
        with self._lock:
            if token < self._wide_at:
                return
            for u, name in names.items():
                if self._evicted.get(u, -1) <= token:
                    self._names[u] = name
            while len(self._names) > self.max_posts:
                self._names.popitem(last=False)

    # -- the eviction side -----------------------------------------------------------------

    def caught_up(self, at: float | None = None) -> None:
        self._caught_up_at = self.clock() if at is None else at

    def stale(self) -> None:
        """The tail lost its place (restart, error): no cache reads until it catches up."""
        self._caught_up_at = None

    def _bump(self, ids: Sequence[str] = ()) -> None:
        self._seq += 1
        for i in ids:
            self._evicted[i] = self._seq

    def evict_post(self, post_id: str) -> None:
        with self._lock:
            entry = self._posts.pop(post_id, None)
            if entry is not None:
                self._drop_item(post_id, entry)
            self._photos.pop(post_id, None)
            self._bump([post_id, _photos_key(post_id)])

    def evict_persona(self, niche_id: str, user_id: str) -> None:
        with self._lock:
            self._personas.pop((niche_id, user_id), None)
            self._drop_items_naming(user_id, niche_id)
            self._bump([_persona_key((niche_id, user_id))])

    def evict_photos(self, carrier_id: str) -> None:
        with self._lock:
            self._photos.pop(carrier_id, None)
            if (entry := self._posts.get(carrier_id)) is not None:
                self._drop_item(carrier_id, entry)
            self._bump([_photos_key(carrier_id)])

    def evict_photo(self, media_id: str) -> None:
        """A photo was purged: every cached list holding it goes."""
        with self._lock:
            for post_id in [p for p, found in self._photos.items()
                            if any(m.id == media_id for m in found)]:
                del self._photos[post_id]
            for post_id, entry in self._posts.items():
                if media_id in entry.item_media:
                    self._drop_item(post_id, entry)
            self._bump([_media_key(media_id)])

    def evict_name(self, user_id: str) -> None:
        with self._lock:
            self._names.pop(user_id, None)
            self._drop_items_naming(user_id)
            self._bump([user_id])

    def evict_all(self) -> None:
        """An account was erased: nothing cached survives (its texts, names, reactions)."""
        with self._lock:
            self._posts.clear()
            self._shown_by.clear()
            self._names.clear()
            self._personas.clear()
            self._photos.clear()
            self._bump()
            self._wide_at = self._seq

    def evict_where(self, drop: Callable[[_Post], Iterable[str]], niche_id: str = "") -> None:
        """For every cached post, forget the viewers ``drop`` names (a graph change), and
        every persona of ``niche_id`` (with every encoded item of the niche's posts)."""
        with self._lock:
            for post_id, entry in self._posts.items():
                for viewer in list(drop(entry)):
                    entry.mine.pop(viewer, None)
                if niche_id and entry.view.niche_id == niche_id:
                    self._drop_item(post_id, entry)
            for key in [k for k in self._personas if k[0] == niche_id]:
                del self._personas[key]
            self._bump()
            self._wide_at = self._seq

    def on_event(self, envelope: EventEnvelope, data: Callable[[], dict[str, Any]],
                 post_topic: str, identity_topic: str, media_topic: str = "") -> None:
        """Evict what one event may have changed (an event of any other topic is graph's)."""
        stream = str(envelope.stream_id)
        CACHE_EVICTIONS.labels("post" if envelope.topic == post_topic else "identity"
                               if envelope.topic == identity_topic else "media"
                               if envelope.topic == media_topic else "graph").inc()
        if envelope.topic == media_topic:
            if envelope.type in (MEDIA_ATTACHED, MEDIA_DETACHED):
                self.evict_photos(str(uuid.UUID(data()["carrier_id"])))
            elif envelope.type == MEDIA_PURGED:
                self.evict_photo(str(uuid.UUID(data()["media_id"])))
        elif envelope.topic == post_topic:
            self.evict_post(stream)
        elif envelope.topic == identity_topic:
            if envelope.type == ACCOUNT_DELETED:
                self.evict_all()
            else:
                self.evict_name(stream)
        elif envelope.type == MEMBER_LEFT:
            d = data()
            niche, user = str(uuid.UUID(d["niche_id"])), str(uuid.UUID(d["user_id"]))
            self.evict_where(lambda e: [user] if e.view.niche_id == niche else [], niche)
        elif envelope.type == USER_BLOCKED:
            d = data()
            a, b = str(uuid.UUID(d["blocker_id"])), str(uuid.UUID(d["blocked_id"]))
            self.evict_where(lambda e: [b] if e.view.author_id == a
                             else [a] if e.view.author_id == b else [])
        elif envelope.type == NICHE_ARCHIVED:
            niche = str(uuid.UUID(data()["niche_id"]))
            self.evict_where(lambda e: list(e.mine) if e.view.niche_id == niche else [], niche)
        elif envelope.type in (MEMBER_JOINED, MEMBER_PROFILE_CHANGED):
            d = data()
            self.evict_persona(str(uuid.UUID(d["niche_id"])), str(uuid.UUID(d["user_id"])))

    def size(self) -> tuple[int, int]:
        """(posts, names) held."""
        with self._lock:
            return len(self._posts), len(self._names)

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {"posts": len(self._posts), "names": len(self._names),
                    "items": sum(e.item is not None for e in self._posts.values()),
                    "personas": len(self._personas), "photos": len(self._photos)}


class CacheFeed:
    """Tails the post, identity, graph and media topics from their end and evicts the cache.

    Its own consumer, no group, no committed offsets: a restarted process starts
    with an empty cache, so it only needs what happens from then on.
    """

    def __init__(self, cache: HydrationCache, bootstrap: str, topics: dict[str, str],
                 codec: AvroCodec | None = None) -> None:
        self.cache = cache
        self.bootstrap = bootstrap
        self.topics = topics  # "post", "identity", "graph", "media" → topic name
        self.codec = codec or default_codec()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._tail(stop)
            except Exception:
                log.exception("feed cache tail failed; restarting in 1 s")
            self.cache.stale()
            self.cache.evict_all()  # events may have been missed while down
            stop.wait(1.0)

    def _tail(self, stop: threading.Event) -> None:
        consumer = Consumer(consumer_config(
            self.bootstrap, f"feed-cache-{uuid.uuid4()}",
            **{"enable.partition.eof": True, "auto.offset.reset": "latest"}))
        try:
            meta = consumer.list_topics(timeout=10)
            parts = [TopicPartition(t, p, OFFSET_END) for t in self.topics.values()
                     for p in sorted(meta.topics[t].partitions)]
            consumer.assign(parts)
            at_end = {(tp.topic, tp.partition): False for tp in parts}
            while not stop.is_set():
                for msg in consumer.consume(500, POLL_S):
                    err = msg.error()
                    key = (msg.topic(), msg.partition())
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            at_end[key] = True
                        else:
                            log.warning("feed cache tail: %s", err)
                        continue
                    at_end[key] = False
                    self._apply(msg)
                if all(at_end.values()):
                    self.cache.caught_up()
        finally:
            consumer.close()

    def _apply(self, msg: Any) -> None:
        try:
            envelope = EventEnvelope.from_message(msg)
        except (KeyError, ValueError, TypeError, AttributeError):
            log.error("feed cache tail: unreadable event at %s/%s@%s; dropping the cache",
                      msg.topic(), msg.partition(), msg.offset())
            self.cache.evict_all()
            return
        try:
            self.cache.on_event(envelope, lambda: self.codec.decode(envelope.payload)[1],
                                self.topics["post"], self.topics["identity"],
                                self.topics.get("media", ""))
        except Exception:  # malformed: forget everything rather than keep what it changed
            log.exception("feed cache tail: cannot apply %s; dropping the cache", envelope.type)
            self.cache.evict_all()
