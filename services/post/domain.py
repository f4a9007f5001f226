"""The post aggregate, rebuilt from its stream, and the rules every post command obeys.

A post's stream holds its publication, edits, deletion, comments and
reactions. Decisions read the state rebuilt from the stream and return the
events to append; only :meth:`Post.apply` changes state. Because a decision is
recorded only at the version it was taken from, "at most one reaction of each
kind per user" holds under concurrent commands.

Who may see a post (membership, blocks) is asked of graph by the application;
the rules that combine the answers are here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from kith.common.errors import InvalidArgument, NotFound, PermissionDenied, check, require
from kith.post.events import (
    CommentAdded,
    CommentDeleted,
    PostAnswered,
    PostDeleted,
    PostEdited,
    PostEvent,
    PostPublished,
    ReactionAdded,
    ReactionRemoved,
)
from kith.post.typed import ASK, TEXT, Body, Draft, check_body
from kith.post.typed import POST_MAX_CHARS as POST_MAX_CHARS

COMMENT_MAX_CHARS = 2000
REACTION_KINDS = ("like", "love", "hug", "congrats", "support", "laugh")


class Role(StrEnum):
    """A member's role in a niche, as graph reports it."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


# -- value rules ------------------------------------------------------------------------------

def check_text(text: str, max_chars: int, name: str = "text") -> str:
    """``text`` without surrounding whitespace, 1..``max_chars`` characters long."""
    stripped = text.strip()
    check(1 <= len(stripped) <= max_chars,
          InvalidArgument(f"{name} must be 1 to {max_chars} characters",
                          details={name: f"must be 1 to {max_chars} characters"}))
    return stripped


def check_kind(kind: str) -> str:
    """A reaction kind (like, love, hug, congrats, support, laugh)."""
    check(kind in REACTION_KINDS,
          InvalidArgument("unknown reaction kind",
                          details={"kind": f"must be one of {', '.join(REACTION_KINDS)}"}))
    return kind


# -- visibility -------------------------------------------------------------------------------

def can_see(role: Role | None, blocked: bool) -> bool:
    """DESIGN §4: a post is readable only by members of its niche with no block either way."""
    return role is not None and not blocked


def check_member(role: Role | None) -> Role:
    """Outsiders learn nothing: an unknown niche and a foreign one look the same."""
    role = require(role, NotFound("niche not found"))
    return role


def check_visible(role: Role | None, blocked: bool) -> None:
    check(can_see(role, blocked), NotFound("post not found"))


# -- the aggregate ----------------------------------------------------------------------------

@dataclass
class Post:
    post_id: str
    niche_id: str
    author_id: str
    text: str
    created_at_ms: int
    edited_at_ms: int = 0
    deleted: bool = False
    body: Body = field(default_factory=Body)  # the type and its fields (text mirrors .text)
    answer: tuple[str, str] | None = None  # an ask's answering (comment_id, comment author)
    comments: dict[str, str] = field(default_factory=dict)  # comment_id -> author_id
    reactions: set[tuple[str, str]] = field(default_factory=set)  # (user_id, kind)
    version: int = 0

    @property
    def comment_count(self) -> int:
        return len(self.comments)

    @classmethod
    def replay(cls, events: Iterable[PostEvent]) -> Post | None:
        """The state after ``events`` (a whole stream, in order); None for an empty stream."""
        post: Post | None = None
        for event in events:
            if post is None:
                assert isinstance(event, PostPublished), "a post stream starts with PostPublished"
                post = cls(event.post_id, event.niche_id, event.author_id, event.text,
                           event.created_at_ms, version=1,
                           body=Body.from_event(event.type, event.text, event.typed))
            else:
                post.apply(event)
        return post

    def apply(self, event: PostEvent) -> None:
        match event:
            case PostEdited():
                self.text = event.text
                self.edited_at_ms = event.edited_at_ms
                typed = event.typed if self.body.type != TEXT else ""
                self.body = Body.from_event(self.body.type, event.text, typed)
            case PostAnswered():
                self.answer = (event.comment_id, event.comment_author_id)
            case PostDeleted():
                self.deleted = True
            case CommentAdded():
                self.comments[event.comment_id] = event.author_id
            case CommentDeleted():
                self.comments.pop(event.comment_id, None)
                if self.answer is not None and self.answer[0] == event.comment_id:
                    self.answer = None
            case ReactionAdded():
                self.reactions.add((event.user_id, event.kind))
            case ReactionRemoved():
                self.reactions.discard((event.user_id, event.kind))
            case PostPublished():
                raise AssertionError("PostPublished only starts a stream")
        self.version += 1

    # -- decisions --------------------------------------------------------------------------

    @staticmethod
    def publish(post_id: str, niche_id: str, author_id: str, body: Body | str,
                now_ms: int) -> PostPublished:
        """A text, or a ``body`` checked by :func:`~kith.post.typed.check_body` and allowed in
        the niche (graph's table of kinds)."""
        if isinstance(body, str):
            body = check_body(Draft(text=body))
        return PostPublished(post_id, niche_id, author_id, body.text, now_ms, body.type,
                             body.typed_json())

    def edit(self, actor_id: str, draft: Draft | str, now_ms: int) -> list[PostEvent]:
        """Author only; the fields given replace theirs; the same content again records nothing."""
        check_live(self)
        check_author(self, actor_id)
        body = check_body(Draft(text=draft) if isinstance(draft, str) else draft, self.body)
        if body == self.body:
            return []
        return [PostEdited(self.post_id, self.niche_id, body.text, now_ms, body.typed_json())]

    def mark_answered(self, actor_id: str, comment_id: str, now_ms: int) -> list[PostEvent]:
        """The author of an ask names the comment (on this post) that answered it."""
        check_live(self)
        check(actor_id == self.author_id,
              PermissionDenied("only the author may mark what answered an ask"))
        check(self.body.type == ASK,
              InvalidArgument("only an ask can be answered", details={"type": "is not ask"}))
        comment_author = self.comments.get(comment_id)
        check(comment_author is not None,
              InvalidArgument("the comment is not on this post",
                              details={"comment_id": "is not a comment on this post"}))
        assert comment_author is not None
        if self.answer == (comment_id, comment_author):
            return []
        return [PostAnswered(self.post_id, self.niche_id, comment_id, comment_author, now_ms)]

    def delete(self, actor_id: str, actor_role: Role, now_ms: int) -> list[PostEvent]:
        """The author, or an owner or admin of the niche (moderation)."""
        check_live(self)
        check_may_delete(self, actor_id, actor_role)
        return [PostDeleted(self.post_id, self.niche_id, self.author_id, actor_id, now_ms)]

    def erase_accounts(self, user_ids: Collection[str], now_ms: int) -> list[PostEvent]:
        """Accounts are gone: so is the post if it is theirs, else their comments and reactions.

        Each removal is by the account itself; a post already deleted records nothing.
        """
        if self.deleted:
            return []
        if self.author_id in user_ids:
            return [PostDeleted(self.post_id, self.niche_id, self.author_id, self.author_id,
                                now_ms)]
        events: list[PostEvent] = [
            CommentDeleted(self.post_id, self.niche_id, comment_id, author_id, author_id,
                           now_ms)
            for comment_id, author_id in self.comments.items() if author_id in user_ids]
        events += [ReactionRemoved(self.post_id, self.niche_id, user_id, kind, now_ms)
                   for user_id, kind in sorted(self.reactions) if user_id in user_ids]
        return events

    def comment(self, comment_id: str, author_id: str, text: str,
                now_ms: int) -> list[PostEvent]:
        check_live(self)
        text = check_text(text, COMMENT_MAX_CHARS)
        return [CommentAdded(self.post_id, self.niche_id, comment_id, author_id, text, now_ms)]

    def react(self, user_id: str, kind: str, now_ms: int) -> list[PostEvent]:
        """At most one reaction of each kind per user: adding one again records nothing."""
        check_live(self)
        if (user_id, check_kind(kind)) in self.reactions:
            return []
        return [ReactionAdded(self.post_id, self.niche_id, user_id, kind, now_ms)]

    def unreact(self, user_id: str, kind: str, now_ms: int) -> list[PostEvent]:
        """Taking back a reaction the user does not have records nothing."""
        check_live(self)
        if (user_id, check_kind(kind)) not in self.reactions:
            return []
        return [ReactionRemoved(self.post_id, self.niche_id, user_id, kind, now_ms)]


def check_live(post: Post) -> None:
    """A deleted post is gone for every command, exactly like one that never existed."""
    check(not post.deleted, NotFound("post not found"))


def check_author(post: Post, actor_id: str) -> None:
    check(actor_id == post.author_id, PermissionDenied("only the author may edit a post"))


def check_may_delete(post: Post, actor_id: str, actor_role: Role) -> None:
    """The author, or a moderator (owner or admin) of the niche."""
    check(actor_id == post.author_id or actor_role in (Role.OWNER, Role.ADMIN),
          PermissionDenied("only the author or a niche owner/admin may delete a post"))
