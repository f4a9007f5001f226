"""A post as API.md shows it in a feed page: the one definition of that JSON.

The feed renders each page item with these functions (and caches the result), the
gateway passes the rendered items through; the gateway's own renderings of posts and
photos (``GET /v1/posts/{id}``, comments, messages, and pages of a feed server older
than ``FeedPage.items_json``) use the same functions.

A feed item's JSON is split around the viewer's own ``my_reactions``
(:func:`feed_item_parts`): everything before it and everything after it are the same
for every viewer who may see the post, so they are rendered once, and
:func:`items_array` splices each viewer's reactions in between. Key order is API.md's:
``id, niche_id, author, author_id, text, created_at, edited_at, reactions,
my_reactions, comment_count, type`` (+ the type's fields), ``media``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson

DELETED_USER = "deleted user"


@lru_cache(maxsize=1 << 16)  # a page renders the same few timestamps again and again
def when(ms: int) -> str | None:
    """RFC 3339 UTC from epoch milliseconds (``None`` for 0 = never)."""
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


class PhotoInfo(Protocol):
    """What a photo's rendering needs (``media.v1.MediaInfo`` or the feed's ``Photo``)."""

    @property
    def id(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def content_type(self) -> str: ...


def photo(info: PhotoInfo) -> dict[str, Any]:
    """A photo: its size and type, and links the gateway serves (media checks each fetch)."""
    url = f"/v1/media/{info.id}"
    return {"id": info.id, "width": info.width, "height": info.height,
            "content_type": info.content_type, "url": f"{url}?size=display",
            "thumb_url": f"{url}?size=thumb"}


def typed_fields(t: Any, names: Mapping[str, str]) -> dict[str, Any]:
    """A post's type and the fields of that type (posts from before types are text);
    ``t`` is a ``post.v1.Typed`` (``None``: a text post)."""
    kind = (t.type if t is not None else "") or "text"
    out: dict[str, Any] = {"type": kind}
    if kind == "highlight":
        out["book"] = {"title": t.book.title, "author": t.book.author,
                       "isbn": t.book.isbn or None}
        out["quote"] = t.quote
        out["page"] = t.page or None
    elif kind == "ask":
        out["skill"] = t.skill or None
        out["answered_by"] = ({"comment_id": t.answered_by.comment_id,
                               "author": {"id": t.answered_by.author_id,
                                          "display_name": names.get(t.answered_by.author_id,
                                                                    DELETED_USER)}}
                              if t.HasField("answered_by") else None)
    elif kind == "moment":
        out["moment"] = {"kind": t.moment.kind, "date": t.moment.date}
    return out


def typed_user_ids(t: Any) -> list[str]:
    """Whose names a typed post's fields mention (an ask's answerer)."""
    return [t.answered_by.author_id] if t.HasField("answered_by") else []


class FeedPost(Protocol):
    """The viewer-independent fields of a post that a feed item shows."""

    @property
    def id(self) -> str: ...
    @property
    def niche_id(self) -> str: ...
    @property
    def author_id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def created_at_ms(self) -> int: ...
    @property
    def edited_at_ms(self) -> int: ...
    @property
    def reactions(self) -> Mapping[str, int]: ...
    @property
    def comment_count(self) -> int: ...
    @property
    def typed(self) -> Any: ...


def _head(p: FeedPost, author_name: str, names: Mapping[str, str]) -> dict[str, Any]:
    return {"id": p.id, "niche_id": p.niche_id,
            "author": {"id": p.author_id,
                       "display_name": names.get(p.author_id) or author_name or DELETED_USER},
            "author_id": p.author_id, "text": p.text, "created_at": when(p.created_at_ms),
            "edited_at": when(p.edited_at_ms), "reactions": dict(p.reactions)}


def _tail(p: FeedPost, names: Mapping[str, str],
          photos: Iterable[PhotoInfo] | None) -> dict[str, Any]:
    out = {"comment_count": p.comment_count, **typed_fields(p.typed, names)}
    if photos is not None:
        out["media"] = [photo(m) for m in photos]
    return out


def feed_item(p: FeedPost, author_name: str, names: Mapping[str, str],
              my_reactions: Sequence[str], photos: Iterable[PhotoInfo] | None = None
              ) -> dict[str, Any]:
    """A feed item, in the shape of ``GET /v1/posts/{id}``: the author and an ask's answerer
    named as ``names`` say (the niche's personas), else the author as ``author_name``;
    ``media`` present unless ``photos`` is ``None``."""
    return {**_head(p, author_name, names), "my_reactions": list(my_reactions),
            **_tail(p, names, photos)}


_MINE = b',"my_reactions":'


def feed_item_parts(p: FeedPost, author_name: str, names: Mapping[str, str],
                    photos: Iterable[PhotoInfo]) -> tuple[bytes, bytes]:
    """:func:`feed_item` as JSON text, cut where the viewer's ``my_reactions`` go: the part
    before (ending in ``"my_reactions":``) and the part after; see :func:`items_array`."""
    head = orjson.dumps(_head(p, author_name, names))
    tail = orjson.dumps(_tail(p, names, photos))
    return head[:-1] + _MINE, b"," + tail[1:]


@lru_cache(maxsize=1024)
def _reactions(mine: tuple[str, ...]) -> bytes:
    return orjson.dumps(mine)


def items_array(items: Iterable[tuple[tuple[bytes, bytes], Sequence[str]]]) -> bytes:
    """A JSON array of feed items, each :func:`feed_item_parts` around one viewer's own
    ``my_reactions``."""
    parts: list[bytes] = []
    add = parts.extend
    for (head, tail), mine in items:
        add((b",", head, _reactions(tuple(mine)) if mine else b"[]", tail))
    if not parts:
        return b"[]"
    parts[0] = b"["
    parts.append(b"]")
    return b"".join(parts)
