"""Command and query handlers of the post service.

Every handler asks graph (through the :class:`Graph` port, one round trip)
whether the user may act on or see the post — except a text publish while post's
membership view is current and vouches for the author (:mod:`kith.post.membership`) —
then, for a command, locks the post's read-model row, rebuilds the aggregate from
its stream, decides, writes the read model and appends, in one transaction.
The graph answer is taken before the transaction so that no row lock is held across
a network call.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from kith.common.commands import Command, CommandRunner, ResultCodec
from kith.common.errors import NotFound, check, require
from kith.common.events import to_new_event
from kith.common.eventstore import EventStore
from kith.post import keys, membership, readmodel
from kith.post.domain import Post, Role, can_see, check_member, check_visible
from kith.post.events import (
    CommentAdded,
    PostEvent,
    PostPublished,
    from_data,
    seal,
    text_owner,
    unseal,
)
from kith.post.readmodel import CommentView, PostView
from kith.post.typed import TEXT, Body, Draft, check_body, check_type_allowed


@dataclass(frozen=True)
class Audience:
    """What graph says about one user: their roles in the niches asked about, and blocks."""

    roles: Mapping[str, Role] = field(default_factory=dict)
    blocked: frozenset[str] = frozenset()  # users blocking or blocked by the viewer
    kinds: Mapping[str, str] = field(default_factory=dict)  # niche -> kind
    post_types: Mapping[str, frozenset[str]] = field(default_factory=dict)  # what it unlocks

    def role(self, niche_id: str) -> Role | None:
        return self.roles.get(niche_id)

    def can_see(self, niche_id: str, author_id: str) -> bool:
        return can_see(self.role(niche_id), author_id in self.blocked)


class Graph(Protocol):
    """The port onto the graph service."""

    def audience(self, user_id: str, niche_ids: Collection[str],
                 other_ids: Collection[str]) -> Audience:
        """``user_id``'s roles among ``niche_ids`` and blocks with ``other_ids``: one round trip."""
        ...


class Members(Protocol):
    """The lag gate of post's membership view (see :mod:`kith.post.membership`)."""

    def current(self) -> bool:
        """Whether the view may vouch for a member now (it is known to be current)."""
        ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class CommentPage:
    items: list[CommentView]
    next_after_seq: int | None  # None on the last page
    niche_id: str = ""


class PostApplication:
    def __init__(self, store: EventStore, graph: Graph,
                 clock: Callable[[], int] = now_ms, members: Members | None = None) -> None:
        self.store = store
        self.graph = graph
        self.members = members
        self.clock = clock
        self.commands = CommandRunner(store,
                                      conflict_message="the post changed concurrently; try again")

    # -- commands -----------------------------------------------------------------------------

    def publish(self, actor_id: str, niche_id: str, draft: Draft | str) -> PostView:
        """Publish a post; its type must be one the niche's kind unlocks (graph's table).

        The author's membership comes from the membership view, read in the publish's own
        transaction, when the view is current (:class:`Members`) and the post is text
        (every kind of niche takes text); a miss rolls back and asks graph, as does every
        other case: the view can vouch, never refuse."""
        body = check_body(Draft(text=draft) if isinstance(draft, str) else draft)
        event = Post.publish(str(uuid.uuid4()), niche_id, actor_id, body, self.clock())
        if self.members is not None and body.type == TEXT and self.members.current():
            try:
                return self._publish(actor_id, event, body, by_view=True)
            except _AskGraph:
                pass
        if self.members is not None:
            membership.CHECKS.labels("graph").inc()
        audience = self.graph.audience(actor_id, [niche_id], ())
        check_member(audience.role(niche_id))
        check_type_allowed(body.type, audience.post_types.get(niche_id, frozenset({TEXT})),
                           audience.kinds.get(niche_id, ""))
        return self._publish(actor_id, event, body, by_view=False)

    def _publish(self, actor_id: str, event: PostPublished, body: Body,
                 by_view: bool) -> PostView:
        niche_id = event.niche_id

        def record(command: Command) -> PostView:
            conn = command.conn
            readmodel.lock_authors(conn, [actor_id], exclusive=False)
            if by_view:  # one statement: the erased-author mark and the view's row
                deleted, role = membership.standing(conn, actor_id, niche_id)
                if not deleted and role is None:
                    raise _AskGraph  # not in the view (yet): graph answers
                _refuse_deleted(deleted, actor_id, NotFound("niche not found"))
                membership.CHECKS.labels("view").inc()
            else:
                _check_not_deleted(conn, actor_id, NotFound("niche not found"))
            readmodel.record(conn, 1, [event])
            sealed = seal(event, keys.key_for(conn, actor_id))
            command.append(event.post_id, 0, [to_new_event(sealed)])
            return PostView(post_id=event.post_id, niche_id=niche_id, author_id=actor_id,
                            text=event.text, created_at_ms=event.created_at_ms, edited_at_ms=0,
                            reactions={}, my_reactions=[], comment_count=0, body=body)

        def first_post(conn: psycopg.Connection, kept: dict[str, Any]) -> PostView:
            found = readmodel.posts(conn, [kept["post_id"]], actor_id)
            check(bool(found), NotFound("post not found"))  # deleted since the first run
            return found[0]

        # A repeat of the command (same command id) answers with the post it published.
        return self.commands.run(
            "publish", record, actor_id=actor_id,
            result=ResultCodec[PostView](lambda view: {"post_id": view.post_id}, first_post))

    def edit(self, actor_id: str, post_id: str, draft: Draft | str) -> PostView:
        self._authorize(actor_id, post_id)
        now = self.clock()
        wanted = Draft(text=draft) if isinstance(draft, str) else draft
        done = self._command("edit", actor_id, post_id,
                             lambda post: post.edit(actor_id, wanted, now),
                             view_for=actor_id, writer=actor_id)
        assert done.view is not None
        return done.view

    def mark_answered(self, actor_id: str, post_id: str, comment_id: str) -> PostView:
        """The ask's author marks the comment that answered it; returns the post."""
        self._authorize(actor_id, post_id)
        now = self.clock()
        done = self._command("mark_answered", actor_id, post_id,
                             lambda post: post.mark_answered(actor_id, comment_id, now),
                             view_for=actor_id)
        assert done.view is not None
        return done.view

    def delete(self, actor_id: str, post_id: str) -> None:
        # Moderators act on every post of their niche, even one whose author blocks them.
        role = self._authorize(actor_id, post_id, moderators_see_all=True)
        now = self.clock()
        self._command("delete", actor_id, post_id,
                      lambda post: post.delete(actor_id, role, now))

    def add_comment(self, actor_id: str, post_id: str, text: str) -> CommentView:
        self._authorize(actor_id, post_id)
        comment_id, now = str(uuid.uuid4()), self.clock()

        def first_comment(conn: psycopg.Connection, kept: dict[str, Any]) -> _Done:
            found = readmodel.comments(conn, post_id, kept["seq"] - 1, 1)
            check(bool(found) and found[0].comment_id == kept["comment_id"],
                  NotFound("comment not found"))  # deleted since the first run
            return _Done(self._load(conn, post_id), [], None, found[0])

        # A repeat of the command (same command id) answers with the comment it added.
        done = self._command(
            "add_comment", actor_id, post_id,
            lambda post: post.comment(comment_id, actor_id, text, now), writer=actor_id,
            result=ResultCodec[_Done](
                lambda d: {"comment_id": comment_id, "seq": d.post.version}, first_comment))
        if done.comment is not None:
            return done.comment
        event = done.events[0]
        assert isinstance(event, CommentAdded)
        return CommentView(comment_id, post_id, actor_id, event.text, now, done.post.version)

    def add_reaction(self, actor_id: str, post_id: str, kind: str) -> None:
        self._authorize(actor_id, post_id)
        now = self.clock()
        self._command("add_reaction", actor_id, post_id,
                      lambda post: post.react(actor_id, kind, now), writer=actor_id)

    def remove_reaction(self, actor_id: str, post_id: str, kind: str) -> None:
        self._authorize(actor_id, post_id)
        now = self.clock()
        self._command("remove_reaction", actor_id, post_id,
                      lambda post: post.unreact(actor_id, kind, now))

    def erase_accounts(self, conn: psycopg.Connection, user_ids: Sequence[str]) -> int:
        """Take down every post, comment and reaction of deleted accounts; return the event count.

        Runs in the caller's transaction (the projection's). The exclusive author
        lock orders this against a concurrent :meth:`publish`, which then sees the
        ``deleted_authors`` mark; every touched post's row is locked before the
        first append, the order every command follows too.
        """
        readmodel.lock_authors(conn, user_ids, exclusive=True)
        readmodel.mark_authors_deleted(conn, user_ids)
        gone, now = frozenset(user_ids), self.clock()
        recorded = 0
        for post_id in readmodel.lock_posts_touched_by(conn, user_ids):
            done = self._command("erase_accounts", None, post_id,
                                 lambda post: post.erase_accounts(gone, now), conn=conn,
                                 metadata={"reason": "account_deleted",
                                           "user_ids": sorted(gone)})
            recorded += len(done.events)
        keys.destroy(conn, user_ids)  # their texts in the log become unreadable for good
        return recorded

    # -- queries ------------------------------------------------------------------------------

    def get_post(self, viewer_id: str, post_id: str) -> PostView:
        found = self.batch_get_posts(viewer_id, [post_id])
        check(bool(found), NotFound("post not found"))
        return found[0]

    def batch_get_posts(self, viewer_id: str, post_ids: Sequence[str]) -> list[PostView]:
        """The posts among ``post_ids`` that ``viewer_id`` may see, in request order."""
        with self.store.pool.connection() as conn:
            views = readmodel.posts(conn, post_ids, viewer_id)
        if not views:
            return []
        answerers = {v.answer[1] for v in views if v.answer}
        audience = self.graph.audience(viewer_id, {v.niche_id for v in views},
                                       {v.author_id for v in views} | answerers)
        # An answer by someone on the other side of a block is hidden like their comment.
        visible = {v.post_id: v if not v.answer or v.answer[1] not in audience.blocked
                   else dataclasses.replace(v, answer=None)
                   for v in views if audience.can_see(v.niche_id, v.author_id)}
        return [visible[p] for p in dict.fromkeys(post_ids) if p in visible]

    def list_comments(self, viewer_id: str, post_id: str, after_seq: int,
                      limit: int) -> CommentPage:
        """Oldest first; ``after_seq`` is the previous page's ``next_after_seq`` (0 first).

        Comments by users the viewer blocks or is blocked by are left out, asked
        of graph in the same round trip as the post's own visibility.
        """
        with self.store.pool.connection() as conn:
            head = readmodel.header(conn, post_id)
            head = require(head, NotFound("post not found"))
            items = readmodel.comments(conn, post_id, after_seq, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        audience = self.graph.audience(viewer_id, [head.niche_id],
                                       {head.author_id, *(c.author_id for c in items)})
        check_visible(audience.role(head.niche_id), head.author_id in audience.blocked)
        return CommentPage([c for c in items if c.author_id not in audience.blocked],
                           items[-1].seq if more else None, head.niche_id)

    def list_shelf(self, viewer_id: str, niche_id: str, limit: int) -> list[readmodel.ShelfRow]:
        """A book club's shelf as the viewer may see it (no highlights across a block)."""
        with self.store.pool.connection() as conn:
            authors = readmodel.highlight_authors(conn, niche_id)
        audience = self.graph.audience(viewer_id, [niche_id], authors)
        check_member(audience.role(niche_id))
        with self.store.pool.connection() as conn:
            return readmodel.shelf(conn, niche_id, sorted(audience.blocked), limit)

    def list_moments(self, viewer_id: str, niche_ids: Sequence[str],
                     kinds: Sequence[str]) -> list[readmodel.MomentRow]:
        """Moments of ``kinds`` in those of ``niche_ids`` the viewer belongs to, never across
        a block."""
        with self.store.pool.connection() as conn:
            found = readmodel.moments(conn, niche_ids, kinds)
        if not found:
            return []
        audience = self.graph.audience(viewer_id, {m.niche_id for m in found},
                                       {m.author_id for m in found})
        return [m for m in found if audience.can_see(m.niche_id, m.author_id)]

    # -- internals ----------------------------------------------------------------------------

    def _authorize(self, user_id: str, post_id: str, moderators_see_all: bool = False) -> Role:
        """The user's role in the post's niche, if the post is visible to them; else NOT_FOUND.

        A block either way hides the post — except, with ``moderators_see_all``, from the
        niche's owner and admins, so an author cannot escape moderation by blocking them.
        """
        with self.store.pool.connection() as conn:
            head = readmodel.header(conn, post_id)
        head = require(head, NotFound("post not found"))
        others = [head.author_id] if head.author_id != user_id else []
        audience = self.graph.audience(user_id, [head.niche_id], others)
        role = audience.role(head.niche_id)
        moderator = moderators_see_all and role in (Role.OWNER, Role.ADMIN)
        check_visible(role, head.author_id in audience.blocked and not moderator)
        assert role is not None
        return role

    def _command(self, name: str, actor_id: str | None, post_id: str,
                 decide: Callable[[Post], list[PostEvent]],
                 conn: psycopg.Connection | None = None, view_for: str | None = None,
                 writer: str | None = None, metadata: dict[str, Any] | None = None,
                 result: ResultCodec[_Done] | None = None) -> _Done:
        """Lock, load, decide, record and append (through the runner: retried on a
        concurrent append; with ``conn``, inside the caller's transaction).

        ``writer`` is the user whose words or reaction the command records: the shared
        author lock orders the command against their account's erasure (which takes it
        exclusively, then the same post rows), and an erased account records nothing.
        """
        def attempt(command: Command) -> _Done:
            tx = command.conn
            if writer is not None:
                readmodel.lock_authors(tx, [writer], exclusive=False)
                _check_not_deleted(tx, writer, NotFound("post not found"))
            check(readmodel.lock_live(tx, post_id), NotFound("post not found"))
            post = self._load(tx, post_id)
            events = decide(post)
            if events:
                readmodel.record(tx, post.version + 1, events)
                sealed = [self._seal(tx, e, post.author_id) for e in events]
                command.append(post_id, post.version, [to_new_event(e) for e in sealed])
                for event in events:
                    post.apply(event)
            view = readmodel.posts(tx, [post_id], view_for)[0] if view_for is not None else None
            return _Done(post, events, view)

        return self.commands.run(name, attempt, actor_id=actor_id, conn=conn, result=result,
                                 **(metadata or {}))

    @staticmethod
    def _seal(conn: psycopg.Connection, event: PostEvent, post_author_id: str) -> PostEvent:
        owner = text_owner(event, post_author_id)
        return event if owner is None else seal(event, keys.key_for(conn, owner))

    def _load(self, conn: psycopg.Connection, post_id: str) -> Post:
        recorded = self.store.load(uuid.UUID(post_id), conn)
        events = [from_data(r.type, self.store.decode(r)) for r in recorded]
        author = next((e.author_id for e in events if isinstance(e, PostPublished)), None)
        owners = {o for e in events if author and (o := text_owner(e, author))}
        found = keys.keys_of(conn, owners)
        post = Post.replay(
            unseal(e, found.get(text_owner(e, author) or "")) if author else e for e in events)
        post = require(post, NotFound("post not found"))
        return post


class _AskGraph(Exception):
    """The membership view has no row for the author: roll back and ask graph."""


def _check_not_deleted(conn: psycopg.Connection, user_id: str, error: Exception) -> None:
    """Refuse a write by an erased account (the caller holds the author lock)."""
    _refuse_deleted(readmodel.author_deleted(conn, user_id), user_id, error)


def _refuse_deleted(deleted: bool, user_id: str, error: Exception) -> None:
    """Refuse if ``deleted``; the account's key, if this process still held it, is dropped."""
    if deleted:
        keys.forget([user_id])
        raise error


@dataclass(frozen=True)
class _Done:
    post: Post
    events: list[PostEvent]
    view: PostView | None
    comment: CommentView | None = None  # a repeated add_comment: the comment it added

