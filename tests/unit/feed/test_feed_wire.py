"""A feed page assembled from bytes parses as the very page the generated classes build.

Pages leave the feed server pre-serialized (each item's viewer-independent encoding, the
viewer's ``my_reactions`` appended as extra repeated-field entries, then the page's own
fields), so these compare against messages built field by field with the real classes.
"""

from __future__ import annotations

import uuid

from kith.feed.application import FeedItem, FeedPage, Photo, PostView
from kith.feed.grpc_api import encode_item, encode_page
from kith.protos import feed_pb2, media_pb2, post_pb2

NICHE, ALICE, BOB = (str(uuid.uuid4()) for _ in range(3))


def item(text: str = "beans are up", mine: tuple[str, ...] = (), typed: object = None,
         photos: tuple[Photo, ...] = (), names: dict[str, str] | None = None) -> FeedItem:
    post = PostView(str(uuid.uuid4()), NICHE, ALICE, text, 1_700_000_000_123, 42,
                    {"like": 3, "love": 1}, list(mine), 7, typed)
    return FeedItem(post, "Alice", {ALICE: "Al"} if names is None else names, photos)


def built(items: list[FeedItem], next_cursor: str) -> feed_pb2.FeedPage:
    """The page as the servicer used to build it: one message object per item."""
    return feed_pb2.FeedPage(next_cursor=next_cursor, hydrated=True, items=[
        feed_pb2.FeedItem(
            id=i.post.id, niche_id=i.post.niche_id, author_id=i.post.author_id,
            author_display_name=i.author_display_name, text=i.post.text,
            created_at_ms=i.post.created_at_ms, edited_at_ms=i.post.edited_at_ms,
            reactions=dict(i.post.reactions), my_reactions=list(i.post.my_reactions),
            comment_count=i.post.comment_count, typed=i.post.typed, names=dict(i.names),
            media=[media_pb2.MediaInfo(id=m.id, uploader_id=m.uploader_id,
                                       content_type=m.content_type, width=m.width,
                                       height=m.height, bytes=m.bytes,
                                       uploaded_at_ms=m.uploaded_at_ms) for m in i.photos])
        for i in items])


def assembled(items: list[FeedItem], next_cursor: str) -> feed_pb2.FeedPage:
    page = FeedPage([(encode_item(i), i.post.my_reactions) for i in items],
                    next_cursor)
    return feed_pb2.FeedPage.FromString(encode_page(page))


def test_a_page_of_cached_item_bytes_parses_as_the_page_built_from_objects() -> None:
    ask = post_pb2.Typed(type="ask", skill="welding", answered_by=post_pb2.AnsweredBy(
        comment_id=str(uuid.uuid4()), author_id=BOB))
    photo = Photo(str(uuid.uuid4()), ALICE, "image/jpeg", 1200, 900, 204_800, 5)
    items = [item(mine=("like", "love")), item(typed=ask, names={ALICE: "Al", BOB: "Bo"}),
             item(photos=(photo, photo)), item(mine=("love",), names={})]
    cursor = "MTcwMDAwMDAwMDEyMy4xMjM0NTY3OA"
    assert assembled(items, cursor) == built(items, cursor)
    assert list(assembled(items, cursor).items[0].my_reactions) == ["like", "love"]


def test_lengths_beyond_one_varint_byte_and_text_beyond_ascii_survive() -> None:
    items = [item(text="ü" * 70, mine=("🌱",)), item(text="x" * 20_000, mine=("like",)),
             item(text="")]
    assert assembled(items, "") == built(items, "")
    assert assembled(items, "").items[1].text == "x" * 20_000


def test_an_empty_page_and_the_last_page_carry_only_their_own_fields() -> None:
    assert assembled([], "") == feed_pb2.FeedPage(hydrated=True)
    assert assembled([], "abc") == feed_pb2.FeedPage(next_cursor="abc", hydrated=True)
