"""The gRPC face of the post service: validate every field, call the application, map back."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from kith.common import cursors
from kith.common.errors import InvalidArgument
from kith.common.validation import Fields
from kith.post.application import PostApplication
from kith.post.domain import COMMENT_MAX_CHARS, check_kind, check_text
from kith.post.readmodel import CommentView, PostView
from kith.post.typed import MOMENT_KINDS, TEXT, Body, Draft, check_body
from kith.protos import post_pb2, post_pb2_grpc

DEFAULT_COMMENT_PAGE = 50
MAX_COMMENT_PAGE = 100
MAX_BATCH = 200
MAX_SHELF = 500
def encode_cursor(after_seq: int) -> str:
    return cursors.encode(after_seq)


def decode_cursor(cursor: str) -> int:
    """The position a cursor stands for; an empty cursor is the start."""
    if not cursor:
        return 0
    (seq,) = cursors.decode(cursor, int)
    return int(seq)


def typed_message(body: Body, answer: tuple[str, str] | None) -> post_pb2.Typed:
    typed = post_pb2.Typed(type=body.type, quote=body.quote, page=body.page, skill=body.skill)
    if body.book is not None:
        typed.book.CopyFrom(post_pb2.Book(title=body.book.title, author=body.book.author,
                                          isbn=body.book.isbn))
    if body.moment is not None:
        typed.moment.CopyFrom(post_pb2.Moment(kind=body.moment.kind, date=body.moment.date))
    if answer is not None:
        typed.answered_by.CopyFrom(post_pb2.AnsweredBy(comment_id=answer[0], author_id=answer[1]))
    return typed


def post_message(view: PostView) -> post_pb2.Post:
    return post_pb2.Post(
        id=view.post_id, niche_id=view.niche_id, author_id=view.author_id, text=view.text,
        created_at_ms=view.created_at_ms, edited_at_ms=view.edited_at_ms,
        reactions=view.reactions, my_reactions=view.my_reactions,
        comment_count=view.comment_count, typed=typed_message(view.body, view.answer))


def _book(book: post_pb2.Book) -> dict[str, str]:
    return {"title": book.title, "author": book.author, "isbn": book.isbn}


def _moment(moment: post_pb2.Moment) -> dict[str, str]:
    return {"kind": moment.kind, "date": moment.date}


def publish_draft(request: post_pb2.PublishRequest) -> Draft:
    """The body a publish request asks for (unset fields of a proto3 message are "not given")."""
    return Draft(type=request.type or TEXT, text=request.text,
                 book=_book(request.book) if request.HasField("book") else None,
                 quote=request.quote or None, page=request.page or None,
                 skill=request.skill or None,
                 moment=_moment(request.moment) if request.HasField("moment") else None)


def edit_draft(request: post_pb2.EditRequest) -> Draft:
    def given(name: str) -> bool:
        return request.HasField(name)
    return Draft(text=request.text if given("text") else None,
                 book=_book(request.book) if given("book") else None,
                 quote=request.quote if given("quote") else None,
                 page=request.page if given("page") else None,
                 skill=request.skill if given("skill") else None,
                 moment=_moment(request.moment) if given("moment") else None)


def comment_message(view: CommentView) -> post_pb2.Comment:
    return post_pb2.Comment(id=view.comment_id, post_id=view.post_id, author_id=view.author_id,
                            text=view.text, created_at_ms=view.created_at_ms)


class PostServicer(post_pb2_grpc.PostServiceServicer):
    def __init__(self, app: PostApplication) -> None:
        self.app = app

    def Publish(self, request: post_pb2.PublishRequest, context: grpc.ServicerContext
                ) -> post_pb2.Post:
        f = Fields()
        actor, niche = f.uuid("actor_id", request.actor_id), f.uuid("niche_id", request.niche_id)
        draft = publish_draft(request)
        try:
            check_body(draft)  # every problem of the body, before asking graph anything
        except InvalidArgument as bad:
            if not f.problems:
                raise
            f.problems.update(bad.details)
        f.done()
        return post_message(self.app.publish(actor, niche, draft))

    def Edit(self, request: post_pb2.EditRequest, context: grpc.ServicerContext
             ) -> post_pb2.Post:
        f = Fields()
        actor, post = f.uuid("actor_id", request.actor_id), f.uuid("post_id", request.post_id)
        f.done()
        return post_message(self.app.edit(actor, post, edit_draft(request)))

    def MarkAnswered(self, request: post_pb2.MarkAnsweredRequest,
                     context: grpc.ServicerContext) -> post_pb2.Post:
        f = Fields()
        actor, post = f.uuid("actor_id", request.actor_id), f.uuid("post_id", request.post_id)
        comment = f.uuid("comment_id", request.comment_id)
        f.done()
        return post_message(self.app.mark_answered(actor, post, comment))

    def Delete(self, request: post_pb2.DeleteRequest, context: grpc.ServicerContext
               ) -> post_pb2.Empty:
        f = Fields()
        actor, post = f.uuid("actor_id", request.actor_id), f.uuid("post_id", request.post_id)
        f.done()
        self.app.delete(actor, post)
        return post_pb2.Empty()

    def AddComment(self, request: post_pb2.AddCommentRequest, context: grpc.ServicerContext
                   ) -> post_pb2.Comment:
        f = Fields()
        actor, post = f.uuid("actor_id", request.actor_id), f.uuid("post_id", request.post_id)
        text = f.rule(check_text, request.text, COMMENT_MAX_CHARS, fallback="")
        f.done()
        return comment_message(self.app.add_comment(actor, post, text))

    def ListComments(self, request: post_pb2.ListCommentsRequest,
                     context: grpc.ServicerContext) -> post_pb2.ListCommentsResponse:
        f = Fields()
        viewer, post = f.uuid("viewer_id", request.viewer_id), f.uuid("post_id", request.post_id)
        after = f.rule(decode_cursor, request.cursor, fallback=0)
        limit = f.limit(request.limit, DEFAULT_COMMENT_PAGE, MAX_COMMENT_PAGE)
        f.done()
        page = self.app.list_comments(viewer, post, after, limit)
        return post_pb2.ListCommentsResponse(
            items=[comment_message(c) for c in page.items],
            next_cursor="" if page.next_after_seq is None else encode_cursor(page.next_after_seq),
            niche_id=page.niche_id)

    def AddReaction(self, request: post_pb2.ReactionRequest, context: grpc.ServicerContext
                    ) -> post_pb2.Empty:
        actor, post, kind = self._reaction(request)
        self.app.add_reaction(actor, post, kind)
        return post_pb2.Empty()

    def RemoveReaction(self, request: post_pb2.ReactionRequest,
                       context: grpc.ServicerContext) -> post_pb2.Empty:
        actor, post, kind = self._reaction(request)
        self.app.remove_reaction(actor, post, kind)
        return post_pb2.Empty()

    def GetPost(self, request: post_pb2.GetPostRequest, context: grpc.ServicerContext
                ) -> post_pb2.Post:
        f = Fields()
        viewer, post = f.uuid("viewer_id", request.viewer_id), f.uuid("post_id", request.post_id)
        f.done()
        return post_message(self.app.get_post(viewer, post))

    def BatchGetPosts(self, request: post_pb2.BatchGetPostsRequest,
                      context: grpc.ServicerContext) -> post_pb2.BatchGetPostsResponse:
        f = Fields()
        viewer = f.uuid("viewer_id", request.viewer_id)
        ids = f.uuids("post_ids", request.post_ids, MAX_BATCH)
        f.done()
        views = self.app.batch_get_posts(viewer, ids) if ids else []
        return post_pb2.BatchGetPostsResponse(items=[post_message(v) for v in views])

    def ListShelf(self, request: post_pb2.ListShelfRequest,
                  context: grpc.ServicerContext) -> post_pb2.ListShelfResponse:
        f = Fields()
        viewer = f.uuid("viewer_id", request.viewer_id)
        niche = f.uuid("niche_id", request.niche_id)
        limit = f.limit(request.limit, MAX_SHELF, MAX_SHELF)
        f.done()
        return post_pb2.ListShelfResponse(items=[
            post_pb2.ShelfBook(book=post_pb2.Book(title=b.title, author=b.author, isbn=b.isbn),
                               highlights=b.highlights, last_highlight_at_ms=b.last_highlight_ms)
            for b in self.app.list_shelf(viewer, niche, limit)])

    def ListMoments(self, request: post_pb2.ListMomentsRequest,
                    context: grpc.ServicerContext) -> post_pb2.ListMomentsResponse:
        f = Fields()
        viewer = f.uuid("viewer_id", request.viewer_id)
        niches = f.uuids("niche_ids", request.niche_ids)
        kinds = list(request.kinds)
        if any(k not in MOMENT_KINDS for k in kinds):
            f.add("kinds", f"each must be one of {', '.join(MOMENT_KINDS)}")
        f.done()
        found = self.app.list_moments(viewer, niches, kinds) if niches and kinds else []
        return post_pb2.ListMomentsResponse(items=[
            post_pb2.MomentEntry(post_id=m.post_id, niche_id=m.niche_id, author_id=m.author_id,
                                 moment=post_pb2.Moment(kind=m.kind, date=m.date))
            for m in found])

    @staticmethod
    def _reaction(request: post_pb2.ReactionRequest) -> tuple[str, str, str]:
        f = Fields()
        actor, post = f.uuid("actor_id", request.actor_id), f.uuid("post_id", request.post_id)
        kind = f.rule(check_kind, request.kind, fallback="")
        f.done()
        return actor, post, kind


def register(app: PostApplication) -> Callable[[grpc.Server], None]:
    return lambda server: post_pb2_grpc.add_PostServiceServicer_to_server(
        PostServicer(app), server)
