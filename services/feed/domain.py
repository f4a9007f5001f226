"""Feed rules without I/O: the feed order, the niche window, cursors and query limits.

The convergence rule (DESIGN §4): for every member u of niche n, feed(u, n) is
the newest F live posts of n whose author neither blocks nor is blocked by u.
"Newest" is the order of :data:`PostKey`, which depends on the events alone.

A member who has no block either way with any author in n sees exactly the
live posts of n at or above the niche's *floor* — the key of its F-th newest
live post (``None`` while fewer than F are live). :func:`window_shift` turns a
batch's new and retracted posts plus the floor's move into the entries to add
and remove for every such member at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from kith.common import cursors
from kith.common.errors import InvalidArgument, check

PostKey = tuple[int, uuid.UUID]  # (created_at_ms, post_id); larger is newer
DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass(frozen=True)
class FeedPost:
    """A post as the audience index knows it (ids of users and niches are surrogates)."""

    post_id: uuid.UUID
    niche_id: int
    author_id: int
    created_at_ms: int

    @property
    def key(self) -> PostKey:
        return (self.created_at_ms, self.post_id)


def at_or_above(key: PostKey, floor: PostKey | None) -> bool:
    return floor is None or key >= floor


def below(a: PostKey | None, b: PostKey | None) -> bool:
    """``a < b`` where ``None`` is minus infinity."""
    return b is not None and (a is None or a < b)


def window_shift(new_live: Sequence[FeedPost], retracted: Sequence[FeedPost],
                 old_floor: PostKey | None, new_floor: PostKey | None,
                 span: Sequence[FeedPost]) -> tuple[list[FeedPost], list[FeedPost]]:
    """``(insert, delete)`` that take a block-free member's feed of one niche to the new window.

    ``new_live``: posts published in the batch and still live; ``retracted``: posts live
    before the batch and deleted in it; ``span``: the other live posts between the two
    floors (``[new, old)`` when the floor sank, ``[old, new)`` when it rose).
    """
    insert = [p for p in new_live if at_or_above(p.key, new_floor)]
    delete = [p for p in retracted if at_or_above(p.key, old_floor)]
    if below(new_floor, old_floor):
        insert += span  # deletions let older posts back in
    elif below(old_floor, new_floor):
        delete += span  # newer posts pushed these out
    return insert, delete


# -- queries --------------------------------------------------------------------------------

def check_limit(limit: int) -> int:
    """The page size: 0 means the default; otherwise 1..MAX_PAGE."""
    if limit == 0:
        return DEFAULT_PAGE
    check(1 <= limit <= MAX_PAGE, InvalidArgument(
        "limit out of range", details={"limit": f"must be between 1 and {MAX_PAGE}"}))
    return limit


def parse_id(field: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{field} is not a valid id",
                              details={field: "must be a UUID"}) from None


def encode_cursor(key: PostKey) -> str:
    """An opaque keyset cursor: the key of the last entry of a page."""
    return cursors.encode(*key)


def decode_cursor(cursor: str) -> PostKey | None:
    """The key a page continues below; ``None`` for the first page."""
    if not cursor:
        return None
    created_at_ms, post = cursors.decode(cursor, int, uuid.UUID)
    return created_at_ms, post
