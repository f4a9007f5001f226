"""Posts, comments and reactions (post)."""

from __future__ import annotations

from kith.gateway import render
from kith.gateway.media import MEDIA_IDS, create_with_media, photos_of, with_photos
from kith.gateway.operations import api
from kith.gateway.pagination import PAGE_QUERY, open_cursor, seal_cursor
from kith.gateway.profiles import names_in_niche
from kith.gateway.schema import Schema, integer, named, nullable, obj, string, uuid_string
from kith.gateway.views import Call, Reply
from kith.protos import post_pb2

TAG = "posts"
POST_TEXT = string(1, 5000)
COMMENT_TEXT = string(1, 2000)
REACTION = string(enum=render.REACTION_KINDS)
TYPED_INPUT: dict[str, Schema] = {
    "text": string(0, 5000, description="1-5000 chars for text and ask; optional otherwise"),
    "book": render.BOOK, "quote": string(1, 2000), "page": nullable(integer(1, 100_000)),
    "skill": nullable(string(0, 40)), "moment": render.MOMENT}
NEW_POST_BODY = named("NewPost", obj(optional={"type": string(enum=render.POST_TYPES),
                                               **TYPED_INPUT, "media_ids": MEDIA_IDS}))
POST_EDIT_BODY = named("PostEdit", obj(optional=TYPED_INPUT))


def hydrated(call: Call, p: post_pb2.Post) -> dict:
    return with_photos([render.post(p, names_in_niche(
        call, p.niche_id, [p.author_id, *render.typed_user_ids(p.typed)]))],
        photos_of(call, [("post", p.id, "")]))[0]


def typed_request(body: dict) -> dict:
    """The typed fields of a request body as post's protobuf fields (absent = not given)."""
    fields: dict = {}
    if (book := body.get("book")) is not None:
        fields["book"] = post_pb2.Book(title=book["title"], author=book["author"],
                                       isbn=book.get("isbn") or "")
    if (moment := body.get("moment")) is not None:
        fields["moment"] = post_pb2.Moment(kind=moment["kind"], date=moment["date"])
    for name in ("text", "quote", "page", "skill"):
        if body.get(name) is not None:
            fields[name] = body[name]
    return fields


def require_visible(call: Call, post_id: str) -> post_pb2.Post:
    """The post as the caller sees it, else 404 — checked before any 403 could reveal it."""
    return call.rpc(call.gw.clients.post.GetPost,
                    post_pb2.GetPostRequest(viewer_id=call.user_id, post_id=post_id))


@api.operation("POST", "/v1/niches/{niche_id}/posts", summary="Post into a niche I belong to",
               tag=TAG, status=201, response=render.NEW_POST, body=NEW_POST_BODY)
def publish_post(call: Call) -> Reply:
    p = create_with_media(
        call, call.body.get("media_ids", []),
        lambda: call.rpc(call.gw.clients.post.Publish, post_pb2.PublishRequest(
            actor_id=call.user_id, niche_id=call.params["niche_id"],
            type=call.body.get("type", "text"), **typed_request(call.body))),
        lambda p: ("post", p.id, ""))
    body = with_photos([render.new_post(p)], photos_of(call, [("post", p.id, "")]))[0]
    return Reply(201, body, {"Location": f"/v1/posts/{p.id}"})


@api.operation("GET", "/v1/posts/{post_id}", summary="A post I can see", tag=TAG,
               response=render.POST)
def get_post(call: Call) -> Reply:
    p = call.rpc(call.gw.clients.post.GetPost, post_pb2.GetPostRequest(
        viewer_id=call.user_id, post_id=call.params["post_id"]))
    return Reply(200, hydrated(call, p))


@api.operation("PATCH", "/v1/posts/{post_id}", summary="Edit my post", tag=TAG,
               response=render.POST, errors=(403,), body=POST_EDIT_BODY)
def edit_post(call: Call) -> Reply:
    require_visible(call, call.params["post_id"])
    p = call.rpc(call.gw.clients.post.Edit, post_pb2.EditRequest(
        actor_id=call.user_id, post_id=call.params["post_id"], **typed_request(call.body)))
    return Reply(200, hydrated(call, p))


@api.operation("POST", "/v1/posts/{post_id}/answer",
               summary="Mark the comment that answered my ask", tag=TAG, response=render.POST,
               errors=(403,), body=named("Answer", obj({"comment_id": uuid_string()})))
def mark_answered(call: Call) -> Reply:
    p = call.rpc(call.gw.clients.post.MarkAnswered, post_pb2.MarkAnsweredRequest(
        actor_id=call.user_id, post_id=call.params["post_id"],
        comment_id=call.body["comment_id"]))
    return Reply(200, hydrated(call, p))


@api.operation("DELETE", "/v1/posts/{post_id}",
               summary="Delete a post (its author, or an owner/admin of its niche)", tag=TAG,
               status=204, errors=(403,))
def delete_post(call: Call) -> Reply:
    # No visibility pre-check here: owners and admins moderate even posts whose author
    # blocks them. The post service answers 404 to anyone else who cannot see the post.
    call.rpc(call.gw.clients.post.Delete, post_pb2.DeleteRequest(
        actor_id=call.user_id, post_id=call.params["post_id"]))
    return Reply(204)


@api.operation("POST", "/v1/posts/{post_id}/reactions", summary="React to a post", tag=TAG,
               status=204, body=obj({"kind": REACTION}))
def add_reaction(call: Call) -> Reply:
    call.rpc(call.gw.clients.post.AddReaction, post_pb2.ReactionRequest(
        actor_id=call.user_id, post_id=call.params["post_id"], kind=call.body["kind"]))
    return Reply(204)


@api.operation("DELETE", "/v1/posts/{post_id}/reactions/{kind}", summary="Take my reaction back",
               tag=TAG, status=204, path_params={"kind": REACTION})
def remove_reaction(call: Call) -> Reply:
    call.rpc(call.gw.clients.post.RemoveReaction, post_pb2.ReactionRequest(
        actor_id=call.user_id, post_id=call.params["post_id"], kind=call.params["kind"]))
    return Reply(204)


@api.operation("POST", "/v1/posts/{post_id}/comments", summary="Comment on a post", tag=TAG,
               status=201, response=render.COMMENT,
               body=obj({"text": COMMENT_TEXT}, {"media_ids": MEDIA_IDS}))
def add_comment(call: Call) -> Reply:
    c = create_with_media(
        call, call.body.get("media_ids", []),
        lambda: call.rpc(call.gw.clients.post.AddComment, post_pb2.AddCommentRequest(
            actor_id=call.user_id, post_id=call.params["post_id"], text=call.body["text"])),
        lambda c: ("comment", c.id, c.post_id))
    photos = photos_of(call, [("comment", c.id, c.post_id)])
    return Reply(201, with_photos([render.comment(c)], photos)[0])


@api.operation("GET", "/v1/posts/{post_id}/comments", summary="Comments on a post, oldest first",
               tag=TAG, query=PAGE_QUERY, response=render.list_of(render.COMMENT))
def list_comments(call: Call) -> Reply:
    post_id = call.params["post_id"]
    listing = f"comments:{post_id}"
    after = open_cursor(call.gw.cursors, call.query.get("cursor"), listing)
    reply = call.rpc(call.gw.clients.post.ListComments, post_pb2.ListCommentsRequest(
        viewer_id=call.user_id, post_id=post_id, limit=call.query["limit"],
        cursor=after if isinstance(after, str) else ""))
    names = names_in_niche(call, reply.niche_id, (c.author_id for c in reply.items))
    photos = photos_of(call, [("comment", c.id, c.post_id) for c in reply.items])
    return Reply(200, {"items": with_photos([render.comment(c, names) for c in reply.items],
                                            photos),
                       "next_cursor": seal_cursor(call.gw.cursors, reply.next_cursor, listing)})
