"""The niche window, cursors, limits and event mapping, without infrastructure."""

from __future__ import annotations

import uuid

import pytest

from kith.common.errors import InvalidArgument
from kith.feed.domain import (
    DEFAULT_PAGE,
    FeedPost,
    check_limit,
    decode_cursor,
    encode_cursor,
    parse_id,
    window_shift,
)
from kith.feed.events import Deleted, Joined, Published, to_change


def post(ts: int, n: int = 1) -> FeedPost:
    return FeedPost(uuid.UUID(int=ts), n, 7, ts)


def test_new_posts_below_the_floor_are_not_delivered() -> None:
    insert, delete = window_shift([post(5), post(50)], [], post(10).key, post(10).key, [])
    assert insert == [post(50)] and delete == []


def test_a_rising_floor_pushes_the_oldest_out() -> None:
    insert, delete = window_shift([post(50)], [], post(10).key, post(20).key, [post(10)])
    assert insert == [post(50)] and delete == [post(10)]


def test_a_retraction_lets_the_next_older_post_back_in() -> None:
    insert, delete = window_shift([], [post(30)], post(20).key, post(10).key, [post(10)])
    assert insert == [post(10)] and delete == [post(30)]


def test_retracting_a_post_below_the_floor_touches_no_feed() -> None:
    assert window_shift([], [post(5)], post(20).key, post(20).key, []) == ([], [])


def test_without_a_cap_everything_live_is_in() -> None:
    insert, delete = window_shift([post(1), post(2)], [post(3)], None, None, [])
    assert insert == [post(1), post(2)] and delete == [post(3)]


def test_the_first_floor_pushes_out_what_lies_below_it() -> None:
    insert, delete = window_shift([post(9)], [], None, post(4).key, [post(3)])
    assert insert == [post(9)] and delete == [post(3)]


def test_cursors_round_trip_and_reject_garbage() -> None:
    key = (1_760_000_000_123, uuid.uuid4())
    assert decode_cursor(encode_cursor(key)) == key
    assert decode_cursor("") is None
    with pytest.raises(InvalidArgument) as err:
        decode_cursor("not-a-cursor!")
    assert "cursor" in err.value.details


def test_limits() -> None:
    assert check_limit(0) == DEFAULT_PAGE
    assert check_limit(100) == 100
    for bad in (-1, 101):
        with pytest.raises(InvalidArgument) as err:
            check_limit(bad)
        assert "limit" in err.value.details


def test_ids_must_be_uuids() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_id("niche_id", "42")
    assert err.value.details == {"niche_id": "must be a UUID"}


def test_events_map_to_audience_changes() -> None:
    n, u, p = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert to_change("kith.graph.MemberJoined", {"niche_id": str(n), "user_id": str(u),
                                                 "role": "member"}) == Joined(n, u)
    assert to_change("kith.post.PostPublished", {
        "post_id": str(p), "niche_id": str(n), "author_id": str(u), "text": "t",
        "created_at_ms": 5}) == Published(p, n, u, 5)
    assert to_change("kith.post.PostDeleted", {"post_id": str(p)}) == Deleted(p)
    assert to_change("kith.post.ReactionAdded", {"post_id": str(p)}) is None
    with pytest.raises(ValueError):
        to_change("kith.graph.MemberLeft", {"niche_id": "x", "user_id": str(u)})
