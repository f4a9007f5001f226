"""The graph and post events the fan-out worker follows, mapped to audience changes.

Niche events live in the niche's stream, block events in the blocker's, post
events in the post's: within each stream the order is kept, across streams
(and across the two topics) it is arbitrary. Events that cannot change a feed
(edits, reactions, comments, invites, roles) map to ``None``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kith.common.contracts import (  # the graph and post events the feed follows
    MEMBER_JOINED,
    MEMBER_LEFT,
    NICHE_ARCHIVED,
    NICHE_CREATED,
    POST_DELETED,
    POST_PUBLISHED,
    USER_BLOCKED,
    USER_UNBLOCKED,
)


@dataclass(frozen=True)
class NicheOpened:
    niche: uuid.UUID


@dataclass(frozen=True)
class Joined:
    niche: uuid.UUID
    user: uuid.UUID


@dataclass(frozen=True)
class Left:
    niche: uuid.UUID
    user: uuid.UUID


@dataclass(frozen=True)
class Archived:
    niche: uuid.UUID


@dataclass(frozen=True)
class Blocked:
    blocker: uuid.UUID
    blocked: uuid.UUID


@dataclass(frozen=True)
class Unblocked:
    blocker: uuid.UUID
    blocked: uuid.UUID


@dataclass(frozen=True)
class Published:
    post: uuid.UUID
    niche: uuid.UUID
    author: uuid.UUID
    created_at_ms: int


@dataclass(frozen=True)
class Deleted:
    post: uuid.UUID


Change = NicheOpened | Joined | Left | Archived | Blocked | Unblocked | Published | Deleted


def to_change(event_type: str, data: dict[str, Any]) -> Change | None:
    """The audience change an event stands for; raises ``KeyError``/``ValueError`` if malformed."""
    u = uuid.UUID
    if event_type == NICHE_CREATED:
        return NicheOpened(u(data["niche_id"]))
    if event_type == MEMBER_JOINED:
        return Joined(u(data["niche_id"]), u(data["user_id"]))
    if event_type == MEMBER_LEFT:
        return Left(u(data["niche_id"]), u(data["user_id"]))
    if event_type == NICHE_ARCHIVED:
        return Archived(u(data["niche_id"]))
    if event_type == USER_BLOCKED:
        return Blocked(u(data["blocker_id"]), u(data["blocked_id"]))
    if event_type == USER_UNBLOCKED:
        return Unblocked(u(data["blocker_id"]), u(data["blocked_id"]))
    if event_type == POST_PUBLISHED:
        return Published(u(data["post_id"]), u(data["niche_id"]), u(data["author_id"]),
                         int(data["created_at_ms"]))
    if event_type == POST_DELETED:
        return Deleted(u(data["post_id"]))
    return None
