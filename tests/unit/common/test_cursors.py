"""One cursor codec for every keyset listing: what it wrote comes back typed; anything else
is the one ``invalid cursor`` error, never a crash or a position nobody issued."""

from __future__ import annotations

import base64
import uuid

import pytest

from kith.common import cursors
from kith.common.errors import InvalidArgument
from kith.feed.domain import decode_cursor as feed_position
from kith.feed.domain import encode_cursor as feed_cursor
from kith.post.grpc_api import decode_cursor as comments_position

POST = uuid.UUID("0b8f7a4e-3c1d-4e55-9a51-1f7e0f6c2d11")


def raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_position_comes_back_with_its_types() -> None:
    cursor = cursors.encode(1_764_000_000_000, POST, "knitting|crochet", 0)
    assert cursors.decode(cursor, int, uuid.UUID, str, int) == (
        1_764_000_000_000, POST, "knitting|crochet", 0)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe as is


@pytest.mark.parametrize("cursor", [
    "not base64!", raw("not json"), raw('{"a": 1}'), raw("[1]"), raw('[1, "x", 3]'),
    raw('[-1, "0b8f7a4e-3c1d-4e55-9a51-1f7e0f6c2d11"]'),
    raw('[true, "0b8f7a4e-3c1d-4e55-9a51-1f7e0f6c2d11"]'),
    raw('[1, "not-a-uuid"]'), raw('["1", "0b8f7a4e-3c1d-4e55-9a51-1f7e0f6c2d11"]'),
])
def test_anything_else_is_the_one_invalid_cursor_error(cursor: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        cursors.decode(cursor, int, uuid.UUID)
    assert refused.value.details == {"cursor": "is not a cursor from this list"}


def test_the_services_listings_share_the_codec_and_refuse_each_others_cursors() -> None:
    page_end = (1_764_000_000_000, POST)
    assert feed_position(feed_cursor(page_end)) == page_end
    with pytest.raises(InvalidArgument):
        comments_position(feed_cursor(page_end))  # a feed position is not a comment seq
