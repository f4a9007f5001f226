"""Feed pages as JSON: each item, as feed renders it and caches it, is byte for byte what
the gateway rendered from the ``FeedItem`` message before feed rendered pages itself
(but for the order of ``reactions``' keys, which a protobuf map never kept).

``gateway_rendering`` below is the gateway's code of that time (main at fee4269:
``render.feed_item`` + ``media.photo`` + the feed route), kept here as the oracle.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from kith.feed.application import FeedItem, FeedPage, Photo, PostView
from kith.feed.grpc_api import encode_item, encode_json_page, encode_page
from kith.protos import feed_pb2, post_pb2

NICHE, ALICE, BOB = (str(uuid.uuid4()) for _ in range(3))
PHOTO = Photo(str(uuid.uuid4()), ALICE, "image/jpeg", 1200, 900, 204_800, 5)


# -- the gateway's rendering before this change (the oracle) ----------------------------------

def _when(ms: int) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _typed_fields(t: post_pb2.Typed, names: Mapping[str, str]) -> dict[str, Any]:
    kind = t.type or "text"
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
                                                                    "deleted user")}}
                              if t.HasField("answered_by") else None)
    elif kind == "moment":
        out["moment"] = {"kind": t.moment.kind, "date": t.moment.date}
    return out


def gateway_rendering(i: feed_pb2.FeedItem) -> dict[str, Any]:
    names = dict(i.names)
    author_name = names.get(i.author_id) or i.author_display_name or "deleted user"
    return {"id": i.id, "niche_id": i.niche_id,
            "author": {"id": i.author_id, "display_name": author_name},
            "author_id": i.author_id, "text": i.text, "created_at": _when(i.created_at_ms),
            "edited_at": _when(i.edited_at_ms), "reactions": dict(i.reactions),
            "my_reactions": list(i.my_reactions), "comment_count": i.comment_count,
            **_typed_fields(i.typed, names),
            "media": [{"id": m.id, "width": m.width, "height": m.height,
                       "content_type": m.content_type,
                       "url": f"/v1/media/{m.id}?size=display",
                       "thumb_url": f"/v1/media/{m.id}?size=thumb"} for m in i.media]}


# -- what feed answers now -------------------------------------------------------------------

def item(text: str = "beans are up", mine: tuple[str, ...] = (), typed: Any = None,
         photos: tuple[Photo, ...] = (), names: dict[str, str] | None = None,
         author_name: str = "Alice", edited_at_ms: int = 0,
         reactions: dict[str, int] | None = None) -> FeedItem:
    post = PostView(str(uuid.uuid4()), NICHE, ALICE, text, 1_700_000_000_123, edited_at_ms,
                    {"like": 3, "love": 1} if reactions is None else reactions, list(mine), 7,
                    post_pb2.Typed() if typed is None else typed)
    return FeedItem(post, author_name, {ALICE: "Al"} if names is None else names, photos)


def pages(items: list[FeedItem], cursor: str = "") -> tuple[feed_pb2.FeedPage,
                                                           feed_pb2.FeedPage]:
    """The same application page answered as JSON and as messages (both cached encodings)."""
    page = FeedPage([(encode_item(i), i.post.my_reactions) for i in items], cursor)
    return (feed_pb2.FeedPage.FromString(encode_json_page(page)),
            feed_pb2.FeedPage.FromString(encode_page(page)))


def assert_rendered_as_before(items: list[FeedItem]) -> None:
    as_json, as_messages = pages(items)
    assert not as_json.items and as_json.hydrated
    before = [gateway_rendering(i) for i in as_messages.items]
    now = orjson.loads(as_json.items_json)
    assert now == before
    assert [list(i) for i in now] == [list(i) for i in before]  # API.md's key order
    # The same text, but for the order of `reactions` (a protobuf map has none).
    assert as_json.items_json == orjson.dumps(
        [{**b, "reactions": n["reactions"]} for b, n in zip(before, now, strict=True)])


def test_plain_posts_with_and_without_the_viewers_reactions_render_as_the_gateway_did() -> None:
    assert_rendered_as_before([item(mine=("like", "love")), item(mine=()),
                               item(edited_at_ms=1_700_000_100_999, reactions={}),
                               item(names={}, author_name="")])  # an erased author


def test_typed_posts_render_their_fields_and_the_answerers_persona() -> None:
    highlight = post_pb2.Typed(type="highlight", quote="It was the best of times",
                               page=12, book=post_pb2.Book(title="Two Cities",
                                                           author="Dickens"))
    unanswered = post_pb2.Typed(type="ask", skill="welding")
    answered = post_pb2.Typed(type="ask", answered_by=post_pb2.AnsweredBy(
        comment_id=str(uuid.uuid4()), author_id=BOB))
    moment = post_pb2.Typed(type="moment", moment=post_pb2.Moment(kind="new_baby",
                                                                  date="2026-11-30"))
    assert_rendered_as_before([
        item(typed=highlight), item(typed=unanswered),
        item(typed=answered, names={ALICE: "Al", BOB: "Benji the Wrench"}),
        item(typed=answered, names={ALICE: "Al"}),  # the answerer's account is gone
        item(typed=moment, mine=("hug",))])


def test_photos_personas_and_text_beyond_ascii_render_as_the_gateway_did() -> None:
    other = Photo(str(uuid.uuid4()), BOB, "image/png", 640, 480, 1000, 6)
    assert_rendered_as_before([
        item(photos=(PHOTO, other)), item(names={ALICE: "Ålice 🌻"}),
        item(text='quote "this" \\ and \n newline, 日本語, \u2028 and \x00', mine=("🌱",)),
        item(text="x" * 20_000, photos=(PHOTO,))])


def test_one_cached_rendering_serves_each_viewer_their_own_reactions() -> None:
    shared = item()
    encoded = encode_item(shared)
    page = FeedPage([(encoded, ("like",)), (encoded, ())], "")
    first, second = orjson.loads(
        feed_pb2.FeedPage.FromString(encode_json_page(page)).items_json)
    assert first["my_reactions"] == ["like"] and second["my_reactions"] == []
    assert {**first, "my_reactions": []} == second


def test_an_empty_page_and_a_next_cursor() -> None:
    as_json, _ = pages([], "")
    assert as_json == feed_pb2.FeedPage(items_json=b"[]", hydrated=True)
    as_json, _ = pages([item()], "MTcwMDAwMDAwMDEyMy4x")
    assert as_json.next_cursor == "MTcwMDAwMDAwMDEyMy4x" and len(
        orjson.loads(as_json.items_json)) == 1
