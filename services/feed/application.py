"""Feed queries: a page of entries from the read model, hydrated from post and identity.

Post and identity are reached through the two ports below (gRPC adapters in
:mod:`kith.feed.clients`). Post applies its own read-time privacy check, so an
entry whose post it withholds (deleted, or no longer visible) is left out.

With a :class:`PageCache` (:mod:`kith.feed.hydration`) a page asks post and
identity only for what the cache misses: a post this viewer was shown before
and that no event has touched since is served from memory, its visibility then
resting on the read model's memberships and blocks (which the same SQL filters
on) plus the cache's eviction of the viewer on a leave, removal or block. While
the cache's event tail is behind, every page takes the synchronous path.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

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


@dataclass(frozen=True)
class FeedItem:
    post: PostView
    author_display_name: str


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    next_cursor: str


class Posts(Protocol):
    def batch_get(self, viewer_id: str, post_ids: Sequence[str]) -> dict[str, PostView]:
        """The posts among ``post_ids`` the viewer may read."""


class Profiles(Protocol):
    def display_names(self, user_ids: Sequence[str]) -> dict[str, str]:
        """Display names of the users among ``user_ids`` that exist."""


class PageCache(Protocol):
    """What a page may take from memory (:class:`kith.feed.hydration.HydrationCache`)."""

    def admit(self) -> bool:
        """Whether this page may be served from the cache (its event tail is caught up)."""
    def begin(self) -> int: ...
    def end(self, token: int) -> None: ...
    def posts(self, viewer: str, post_ids: Sequence[str]) -> dict[str, PostView]: ...
    def names(self, user_ids: Sequence[str]) -> dict[str, str]: ...
    def store_posts(self, token: int, viewer: str, views: Sequence[PostView]) -> None: ...
    def store_names(self, token: int, names: dict[str, str]) -> None: ...


class FeedApplication:
    def __init__(self, reader: FeedReader, posts: Posts, profiles: Profiles,
                 hydration_threads: int = 8, cache: PageCache | None = None) -> None:
        self.reader = reader
        self.posts = posts
        self.profiles = profiles
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
        authors = sorted({str(e.author_id) for e in page})
        post_ids = [str(e.post_id) for e in page]
        if self.cache is not None and self.cache.admit():
            posts, names = self._cached(str(viewer), post_ids, authors, self.cache)
        else:
            posts, names = self._fetch(str(viewer), post_ids, authors)
        items = [FeedItem(posts[str(e.post_id)], names.get(str(e.author_id), ""))
                 for e in page if str(e.post_id) in posts]
        return FeedPage(items, next_cursor)

    def _fetch(self, viewer: str, post_ids: Sequence[str], authors: Sequence[str]
               ) -> tuple[dict[str, PostView], dict[str, str]]:
        """Ask post and identity; the two calls are independent: overlap them."""
        names_call = self._hydration.submit(  # in this request's context (request id, caller)
            contextvars.copy_context().run, self.profiles.display_names, authors) \
            if authors else None
        posts = self.posts.batch_get(viewer, post_ids) if post_ids else {}
        return posts, names_call.result() if names_call else {}

    def _cached(self, viewer: str, post_ids: Sequence[str], authors: Sequence[str],
                cache: PageCache) -> tuple[dict[str, PostView], dict[str, str]]:
        """Take what the cache holds; ask post and identity for the rest, and keep it."""
        token = cache.begin()
        try:
            posts = cache.posts(viewer, post_ids)
            names = cache.names(authors)
            fetched, found = self._fetch(viewer, [p for p in post_ids if p not in posts],
                                         [a for a in authors if a not in names])
            cache.store_posts(token, viewer, list(fetched.values()))
            cache.store_names(token, found)
            return {**posts, **fetched}, {**names, **found}
        finally:
            cache.end(token)
