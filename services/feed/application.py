"""Feed queries: a page of entries from the read model, hydrated from post, identity,
graph (personas) and media (photos), so the gateway makes one call per page.

The four are reached through the ports below (gRPC adapters in
:mod:`kith.feed.clients`). Post applies its own read-time privacy check, so an
entry whose post it withholds (deleted, or no longer visible) is left out;
personas and photos are asked only for the posts shown.

With a :class:`PageCache` (:mod:`kith.feed.hydration`) a page asks only for what
the cache misses: a post this viewer was shown before and that no event has
touched since is served from memory, its visibility then resting on the read
model's memberships and blocks (which the same SQL filters on) plus the cache's
eviction of the viewer on a leave, removal or block. Personas are kept per
(niche, member) and photos per post — neither depends on the viewer once the
post itself may be shown (the only way either reaches a page). While the
cache's event tail is behind, every page takes the synchronous path.

A page leaves here encoded: each item is the adapter's encodings of everything but
the viewer's ``my_reactions`` (an :data:`ItemEncoder`, given by the gRPC adapter: a
serialized ``FeedItem``, and API.md's JSON of the item cut around ``my_reactions``),
plus those reactions. The cache keeps each post's encoding next to its view and
serves a page whose items it all holds without looking up, building or encoding
anything (its eviction drops an encoding whenever any part of it changes).
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from kith.common.errors import NotFound, require
from kith.feed.domain import check_limit, decode_cursor, encode_cursor, parse_id
from kith.feed.readmodel import Entry, FeedReader


@dataclass(frozen=True)
class PostView:
    """What post tells a viewer about one post."""

    id: str
    niche_id: str
    author_id: str
    text: str
    created_at_ms: int
    edited_at_ms: int
    reactions: Mapping[str, int] = field(default_factory=dict)
    my_reactions: Sequence[str] = ()
    comment_count: int = 0
    typed: Any = None  # the post's type and its fields, passed through as post gave them
    cacheable: bool = True  # False: post tailored more than my_reactions to the viewer

    def with_reactions(self, mine: Sequence[str]) -> PostView:
        """This view with ``my_reactions`` = ``mine`` (``dataclasses.replace`` costs 5x more,
        and a cached page makes one per post)."""
        return PostView(self.id, self.niche_id, self.author_id, self.text, self.created_at_ms,
                        self.edited_at_ms, self.reactions, mine, self.comment_count,
                        self.typed, self.cacheable)


@dataclass(frozen=True)
class Photo:
    """A photo attached to a post, as media describes it (the same for every reader)."""

    id: str
    uploader_id: str
    content_type: str
    width: int
    height: int
    bytes: int
    uploaded_at_ms: int


PersonaKey = tuple[str, str]  # (niche_id, user_id)


@dataclass(frozen=True)
class FeedItem:
    post: PostView
    author_display_name: str  # the account's display name ("" if it no longer exists)
    names: Mapping[str, str] = field(default_factory=dict)  # as the niche shows them
    photos: Sequence[Photo] = ()


class Encoded(NamedTuple):
    """An item encoded without ``my_reactions`` (the same for every viewer who may see it)."""

    proto: bytes  # a serialized ``FeedItem``
    json: tuple[bytes, bytes]  # API.md's JSON around my_reactions (post_json.feed_item_parts)


ItemEncoder = Callable[[FeedItem], Encoded]
"""An item's encodings; :func:`kith.feed.grpc_api.encode_item`."""


EncodedItem = tuple[Encoded, Sequence[str]]
"""One item of a page: its encodings without ``my_reactions``, and the viewer's own."""


@dataclass(frozen=True)
class FeedPage:
    items: list[EncodedItem]
    next_cursor: str


class Posts(Protocol):
    def batch_get(self, viewer_id: str, post_ids: Sequence[str]) -> dict[str, PostView]:
        """The posts among ``post_ids`` the viewer may read."""


class Profiles(Protocol):
    def display_names(self, user_ids: Sequence[str]) -> dict[str, str]:
        """Display names of the users among ``user_ids`` that exist."""


class Personas(Protocol):
    def personas(self, viewer_id: str, keys: Sequence[PersonaKey]) -> dict[PersonaKey, str]:
        """The personas among ``keys`` (niches the viewer belongs to, of current members)."""


class Photos(Protocol):
    def photos(self, viewer_id: str, post_ids: Sequence[str]
               ) -> dict[str, list[Photo]] | None:
        """Post id → its photos (posts without any left out); ``None`` if media is down."""


class PageCache(Protocol):
    """What a page may take from memory (:class:`kith.feed.hydration.HydrationCache`)."""

    def admit(self) -> bool:
        """Whether this page may be served from the cache (its event tail is caught up)."""
    def begin(self) -> int: ...
    def end(self, token: int) -> None: ...
    def items(self, viewer: str, post_ids: Sequence[str]) -> dict[str, EncodedItem]:
        """Encoded items of the posts ``viewer`` may be shown from memory, with their
        ``my_reactions``; a post whose view or any part of its encoding is not held is left
        out."""
    def posts(self, viewer: str, post_ids: Sequence[str]) -> dict[str, PostView]: ...
    def names(self, user_ids: Sequence[str]) -> dict[str, str]: ...
    def personas(self, keys: Sequence[PersonaKey]) -> dict[PersonaKey, str]:
        """Cached answers, ``""`` for a key known to have no persona."""
    def photos(self, post_ids: Sequence[str]) -> dict[str, tuple[Photo, ...]]: ...
    def store_posts(self, token: int, viewer: str, views: Sequence[PostView]) -> None: ...
    def store_names(self, token: int, names: dict[str, str]) -> None: ...
    def store_personas(self, token: int, personas: dict[PersonaKey, str]) -> None: ...
    def store_photos(self, token: int, photos: dict[str, tuple[Photo, ...]]) -> None: ...
    def store_items(self, token: int, items: Sequence[tuple[FeedItem, Encoded]]) -> None:
        """Keep each item's encoding (built from cached or just-answered parts after
        ``token``) next to its post's view, unless any part was evicted since."""


class _Uncached:
    """The synchronous path: every lookup misses, nothing is kept."""

    def begin(self) -> int:
        return 0

    def end(self, token: int) -> None:
        pass

    def items(self, viewer: str, post_ids: Sequence[str]) -> dict[str, EncodedItem]:
        return {}

    def posts(self, viewer: str, post_ids: Sequence[str]) -> dict[str, PostView]:
        return {}

    def names(self, user_ids: Sequence[str]) -> dict[str, str]:
        return {}

    def personas(self, keys: Sequence[PersonaKey]) -> dict[PersonaKey, str]:
        return {}

    def photos(self, post_ids: Sequence[str]) -> dict[str, tuple[Photo, ...]]:
        return {}

    def store_posts(self, token: int, viewer: str, views: Sequence[PostView]) -> None:
        pass

    def store_names(self, token: int, names: dict[str, str]) -> None:
        pass

    def store_personas(self, token: int, personas: dict[PersonaKey, str]) -> None:
        pass

    def store_photos(self, token: int, photos: dict[str, tuple[Photo, ...]]) -> None:
        pass

    def store_items(self, token: int, items: Sequence[tuple[FeedItem, Encoded]]) -> None:
        pass


_UNCACHED = _Uncached()


def named_users(post: PostView) -> list[str]:
    """Whose names an item shows: its author, and an ask's answerer."""
    typed = post.typed
    answerer = typed.answered_by.author_id if typed is not None \
        and typed.HasField("answered_by") else ""
    return [post.author_id, answerer] if answerer else [post.author_id]


class FeedApplication:
    def __init__(self, reader: FeedReader, posts: Posts, profiles: Profiles,
                 personas: Personas, photos: Photos, encode: ItemEncoder,
                 hydration_threads: int = 8, cache: PageCache | None = None) -> None:
        self.reader = reader
        self.encode = encode
        self.posts = posts
        self.profiles = profiles
        self.personas = personas
        self.photos = photos
        self.cache = cache
        self._hydration = ThreadPoolExecutor(hydration_threads, thread_name_prefix="hydrate")

    def home_feed(self, viewer_id: str, limit: int, cursor: str) -> FeedPage:
        viewer = parse_id("viewer_id", viewer_id)
        size = check_limit(limit)
        entries = self.reader.home_page(viewer, decode_cursor(cursor), size + 1)
        return self._page(viewer, entries, size)

    def niche_feed(self, viewer_id: str, niche_id: str, limit: int, cursor: str) -> FeedPage:
        viewer = parse_id("viewer_id", viewer_id)
        niche = parse_id("niche_id", niche_id)
        size = check_limit(limit)
        entries = self.reader.niche_page(viewer, niche, decode_cursor(cursor), size + 1)
        entries = require(entries, NotFound("no such niche", code="niche_not_found"))
        return self._page(viewer, entries, size)

    def _page(self, viewer: uuid.UUID, entries: list[Entry], size: int) -> FeedPage:
        page, more = entries[:size], len(entries) > size
        next_cursor = encode_cursor(page[-1].key) if more else ""
        if not page:
            return FeedPage([], next_cursor)
        cache: PageCache | _Uncached = _UNCACHED
        if self.cache is not None and self.cache.admit():
            cache = self.cache
        token = cache.begin()
        try:
            return FeedPage(self._hydrate(str(viewer), page, cache, token), next_cursor)
        finally:
            cache.end(token)

    def _later(self, fn: Any, *args: Any) -> Future[Any]:
        """``fn(*args)`` on the hydration pool, in this request's context (request id, caller)."""
        return self._hydration.submit(contextvars.copy_context().run, fn, *args)

    def _hydrate(self, viewer: str, page: list[Entry], cache: PageCache | _Uncached,
                 token: int) -> list[EncodedItem]:
        """The page's items: encoded ones from the cache, the others built and encoded
        (:meth:`_build`), their encodings kept when every part of them is known."""
        post_ids = [e.post_id for e in page]
        ready = cache.items(viewer, post_ids)
        if len(ready) == len(post_ids):
            return [ready[p] for p in post_ids]
        built, complete = self._build(viewer, [e for e in page if e.post_id not in ready],
                                      cache, token)
        encoded = [(i, self.encode(i)) for i in built]
        cache.store_items(token, [(i, b) for i, b in encoded if i.post.id in complete])
        for i, body in encoded:
            ready[i.post.id] = (body, i.post.my_reactions)
        return [ready[p] for p in post_ids if p in ready]

    def _build(self, viewer: str, page: list[Entry], cache: PageCache | _Uncached,
               token: int) -> tuple[list[FeedItem], set[str]]:
        """Take what the cache holds; ask post, identity, media, then graph for the rest
        (independent calls overlapped), and keep what they answered. Returns the items
        shown and the ids of those whose every part is known (photos: media answered)."""
        post_ids = [e.post_id for e in page]
        authors = sorted({e.author_id for e in page})
        posts = cache.posts(viewer, post_ids)
        names = cache.names(authors)
        photos: dict[str, tuple[Photo, ...]] = cache.photos(post_ids)
        want_names = [a for a in authors if a not in names]
        want_photos = [p for p in post_ids if p not in photos]
        names_call = self._later(self.profiles.display_names, want_names) if want_names \
            else None
        photos_call = self._later(self.photos.photos, viewer, want_photos) if want_photos \
            else None
        fetched = self.posts.batch_get(viewer, [p for p in post_ids if p not in posts]) \
            if len(posts) < len(post_ids) else {}
        found = names_call.result() if names_call else {}
        attached = photos_call.result() if photos_call else {}
        posts.update(fetched)
        names.update(found)
        shown = [posts[p] for p in post_ids if p in posts]

        # Names as each niche shows people: the persona there, else the account's name.
        keys = sorted({(v.niche_id, u) for v in shown for u in named_users(v)})
        personas = cache.personas(keys)
        want_keys = [k for k in keys if k not in personas]
        answerers = sorted({u for _, u in keys if u not in names})
        answerers_call = self._later(self.profiles.display_names, answerers) if answerers \
            else None
        asked = self.personas.personas(viewer, want_keys) if want_keys else {}
        found_answerers = answerers_call.result() if answerers_call else {}
        names.update(found_answerers)
        personas.update({k: asked.get(k, "") for k in want_keys})

        cache.store_posts(token, viewer, list(fetched.values()))
        cache.store_names(token, {**found, **found_answerers})
        cache.store_personas(token, {k: personas[k] for k in want_keys})
        if attached is not None:  # media answered: keep what it said of the posts shown
            photos.update({p: tuple(attached.get(p, ())) for p in want_photos})
            cache.store_photos(token, {p: photos[p] for p in want_photos if p in posts})
        items = []
        for v in shown:
            people = {u: personas.get((v.niche_id, u)) or names.get(u, "")
                      for u in named_users(v)}
            items.append(FeedItem(v, names.get(v.author_id, ""),
                                  {u: n for u, n in people.items() if n},
                                  photos.get(v.id, ())))
        return items, {v.id for v in shown if v.id in photos}
