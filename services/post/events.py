"""The post service's events: type names, payloads as dataclasses, and the dict mapping.

Each dataclass mirrors its Avro schema in ``schemas/post/<Name>.v1.avsc`` field
for field, so the mapping is ``asdict`` one way and ``cls(**data)`` the other.
Every event lives in the stream of its post (stream id = post id).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from kith.common import crypto
from kith.common.events import from_data as common_from_data


@dataclass(frozen=True)
class PostPublished:
    TYPE: ClassVar[str] = "kith.post.PostPublished"
    post_id: str
    niche_id: str
    author_id: str
    text: str
    created_at_ms: int
    type: str = "text"  # v2; posts published before types existed read as text
    typed: str = ""  # v2: the type's fields as JSON (sealed like the text); "" for text


@dataclass(frozen=True)
class PostEdited:
    TYPE: ClassVar[str] = "kith.post.PostEdited"
    post_id: str
    niche_id: str
    text: str
    edited_at_ms: int
    typed: str = ""  # v2: the type's fields after the edit (sealed); "" for text


@dataclass(frozen=True)
class PostAnswered:
    """The author of an ask marked the comment that answered it."""

    TYPE: ClassVar[str] = "kith.post.PostAnswered"
    post_id: str
    niche_id: str
    comment_id: str
    comment_author_id: str
    answered_at_ms: int


@dataclass(frozen=True)
class PostDeleted:
    TYPE: ClassVar[str] = "kith.post.PostDeleted"
    post_id: str
    niche_id: str
    author_id: str
    deleted_by: str
    deleted_at_ms: int


@dataclass(frozen=True)
class CommentAdded:
    TYPE: ClassVar[str] = "kith.post.CommentAdded"
    post_id: str
    niche_id: str
    comment_id: str
    author_id: str
    text: str
    created_at_ms: int


@dataclass(frozen=True)
class CommentDeleted:
    TYPE: ClassVar[str] = "kith.post.CommentDeleted"
    post_id: str
    niche_id: str
    comment_id: str
    author_id: str
    deleted_by: str
    deleted_at_ms: int


@dataclass(frozen=True)
class ReactionAdded:
    TYPE: ClassVar[str] = "kith.post.ReactionAdded"
    post_id: str
    niche_id: str
    user_id: str
    kind: str
    at_ms: int


@dataclass(frozen=True)
class ReactionRemoved:
    TYPE: ClassVar[str] = "kith.post.ReactionRemoved"
    post_id: str
    niche_id: str
    user_id: str
    kind: str
    at_ms: int


PostEvent = PostPublished | PostEdited | PostDeleted | CommentAdded | CommentDeleted \
    | ReactionAdded | ReactionRemoved | PostAnswered

EVENT_CLASSES: dict[str, type[PostEvent]] = {
    cls.TYPE: cls
    for cls in (PostPublished, PostEdited, PostDeleted, CommentAdded, CommentDeleted,
                ReactionAdded, ReactionRemoved, PostAnswered)
}

def from_data(event_type: str, data: dict[str, Any]) -> PostEvent:
    """A decoded payload as its dataclass (fields added by later schemas are ignored)."""
    return common_from_data(EVENT_CLASSES, event_type, data)


# -- sealing texts (crypto-shredding) -------------------------------------------------------------

TextEvent = PostPublished | PostEdited | CommentAdded


def text_owner(event: PostEvent, post_author_id: str) -> str | None:
    """Whose key seals the event's text: the comment's author, else the post's; None: no text."""
    if isinstance(event, CommentAdded):
        return event.author_id
    if isinstance(event, PostPublished | PostEdited):
        return post_author_id
    return None


def seal(event: PostEvent, key: bytes) -> PostEvent:
    """The event with its text (and typed fields) encrypted under ``key``, bound to its post."""
    if not isinstance(event, PostPublished | PostEdited | CommentAdded):
        return event
    sealed = replace(event, text=crypto.encrypt(key, event.post_id, event.text))
    if isinstance(sealed, PostPublished | PostEdited) and sealed.typed:
        sealed = replace(sealed, typed=crypto.encrypt(key, event.post_id, sealed.typed))
    return sealed


def unseal(event: PostEvent, key: bytes | None) -> PostEvent:
    """The event with its text readable again, or emptied if the key was destroyed."""
    if not isinstance(event, PostPublished | PostEdited | CommentAdded):
        return event
    if crypto.is_encrypted(event.text):
        try:
            event = replace(event, text=crypto.decrypt(key, event.post_id, event.text))
        except crypto.ShreddedError:
            event = replace(event, text="")
    if isinstance(event, PostPublished | PostEdited) and crypto.is_encrypted(event.typed):
        try:
            event = replace(event, typed=crypto.decrypt(key, event.post_id, event.typed))
        except crypto.ShreddedError:
            event = replace(event, typed="")
    return event
