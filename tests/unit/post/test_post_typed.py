"""Typed posts: the rules of each type, ISBN check digits, and events read across versions."""

from __future__ import annotations

from dataclasses import fields

import pytest

from kith.common import crypto
from kith.common.codec import default_codec
from kith.common.errors import InvalidArgument, PermissionDenied
from kith.post.domain import Post
from kith.post.events import (
    EVENT_CLASSES,
    CommentAdded,
    CommentDeleted,
    PostAnswered,
    PostEdited,
    PostPublished,
    from_data,
    seal,
    unseal,
)
from kith.post.typed import Body, Book, Draft, Moment, check_body, isbn_is_valid

POST, NICHE, AUTHOR, OTHER = "p", "n", "author", "other"


@pytest.mark.parametrize("isbn", ["978-0-441-17271-9", "9780441172719", "0-441-17271-7",
                                  "0 8044 2957 X", "080442957x"])
def test_isbns_with_the_right_check_digit_are_valid(isbn: str) -> None:
    assert isbn_is_valid(isbn)


@pytest.mark.parametrize("isbn", ["978-0-441-17271-8", "0-441-17271-6", "12345", "979123",
                                  "97804411727199", "X441172717", "abcdefghij"])
def test_isbns_with_a_wrong_check_digit_or_shape_are_invalid(isbn: str) -> None:
    assert not isbn_is_valid(isbn)


def test_a_wrong_isbn_alone_is_invalid_isbn() -> None:
    with pytest.raises(InvalidArgument) as err:
        check_body(Draft(type="highlight", book={"title": "T", "author": "A",
                                                 "isbn": "9780441172718"}, quote="q"))
    assert err.value.code == "invalid_isbn"


def test_each_type_requires_its_own_fields() -> None:
    with pytest.raises(InvalidArgument) as err:
        check_body(Draft(type="highlight"))
    assert set(err.value.details) == {"book", "quote"}
    with pytest.raises(InvalidArgument) as err:
        check_body(Draft(type="ask", text=" "))
    assert set(err.value.details) == {"text"}
    with pytest.raises(InvalidArgument) as err:
        check_body(Draft(type="moment", text="no moment"))
    assert set(err.value.details) == {"moment"}
    with pytest.raises(InvalidArgument) as err:
        check_body(Draft(type="poll", text="?"))
    assert set(err.value.details) == {"type"}
    assert check_body(Draft(type="moment", moment={"kind": "new_baby", "date": "2026-01-31"})) \
        == Body("moment", "", moment=Moment("new_baby", "2026-01-31"))


def test_an_edit_keeps_the_type_and_the_fields_it_does_not_give() -> None:
    highlight = check_body(Draft(type="highlight", book={"title": "Dune", "author": "Herbert"},
                                 quote="Fear", page=3))
    edited = check_body(Draft(quote="Fear is the mind-killer."), highlight)
    assert (edited.book, edited.page, edited.quote) == (Book("Dune", "Herbert"), 3,
                                                        "Fear is the mind-killer.")
    with pytest.raises(InvalidArgument):
        check_body(Draft(type="ask"), highlight)


def test_a_v1_post_reads_as_a_text_post() -> None:
    codec = default_codec()
    payload = codec.encode(PostPublished.TYPE, {"post_id": POST, "niche_id": NICHE,
                                                "author_id": AUTHOR, "text": "old",
                                                "created_at_ms": 1}, version=1)
    event = from_data(*codec.decode(payload))
    assert event == PostPublished(POST, NICHE, AUTHOR, "old", 1, "text", "")
    post = Post.replay([event])
    assert post is not None and post.body == Body("text", "old")
    edit = codec.encode(PostEdited.TYPE, {"post_id": POST, "niche_id": NICHE, "text": "new",
                                          "edited_at_ms": 2}, version=1)
    post.apply(from_data(*codec.decode(edit)))
    assert post.body == Body("text", "new")


def test_every_post_event_has_a_schema_with_the_same_fields() -> None:
    registry = default_codec().registry
    for name, cls in EVENT_CLASSES.items():
        schema_fields = [f["name"] for f in registry.latest(name).parsed["fields"]]
        assert schema_fields == [f.name for f in fields(cls)], name


def test_typed_fields_are_sealed_with_the_text_and_shredded_with_the_key() -> None:
    body = check_body(Draft(type="moment", text="knee op",
                            moment={"kind": "surgery", "date": "2026-03-02"}))
    event = Post.publish(POST, NICHE, AUTHOR, body, 1)
    key = crypto.new_key()
    sealed = seal(event, key)
    assert crypto.is_encrypted(sealed.typed) and "surgery" not in sealed.typed
    assert unseal(sealed, key) == event
    shredded = unseal(sealed, None)
    assert (shredded.text, shredded.typed) == ("", "")
    assert Post.replay([shredded]).body == Body("moment", "")  # type: ignore[union-attr]


def test_only_the_author_of_an_ask_marks_a_comment_on_it_as_the_answer() -> None:
    ask = check_body(Draft(type="ask", text="who can fix a bike?", skill="Bikes"))
    post = Post.replay([Post.publish(POST, NICHE, AUTHOR, ask, 1),
                        CommentAdded(POST, NICHE, "c1", OTHER, "me!", 2)])
    assert post is not None
    with pytest.raises(PermissionDenied):
        post.mark_answered(OTHER, "c1", 3)
    with pytest.raises(InvalidArgument):
        post.mark_answered(AUTHOR, "elsewhere", 3)
    [answered] = post.mark_answered(AUTHOR, "c1", 3)
    assert answered == PostAnswered(POST, NICHE, "c1", OTHER, 3)
    post.apply(answered)
    assert post.mark_answered(AUTHOR, "c1", 4) == []
    post.apply(CommentDeleted(POST, NICHE, "c1", OTHER, OTHER, 5))
    assert post.answer is None  # the answer went with its comment
    text = Post.replay([Post.publish("q", NICHE, AUTHOR, "just text", 1),
                        CommentAdded("q", NICHE, "c2", OTHER, "hi", 2)])
    with pytest.raises(InvalidArgument):
        text.mark_answered(AUTHOR, "c2", 3)  # type: ignore[union-attr]
