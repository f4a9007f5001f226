"""Feed queries: a page of entries from the read model, hydrated from post and identity.

Post and identity are reached through the two ports below (gRPC adapters in
:mod:`kith.feed.clients`). Post applies its own read-time privacy check, so an
entry whose post it withholds (deleted, or no longer visible) is left out.
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


class FeedApplication:
    def __init__(self, reader: FeedReader, posts: Posts, profiles: Profiles,
                 hydration_threads: int = 8) -> None:
        self.reader = reader
        self.posts = posts
        self.profiles = profiles
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
        # The two hydration calls are independent (the entries name the authors): overlap them.
        names_call = self._hydration.submit(  # in this request's context (request id, caller)
            contextvars.copy_context().run, self.profiles.display_names,
            sorted({str(e.author_id) for e in page}))
        posts = self.posts.batch_get(str(viewer), [str(e.post_id) for e in page])
        names = names_call.result()
        items = [FeedItem(posts[str(e.post_id)], names.get(str(e.author_id), ""))
                 for e in page if str(e.post_id) in posts]
        return FeedPage(items, next_cursor)
