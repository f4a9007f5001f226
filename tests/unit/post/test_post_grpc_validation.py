"""Boundary validation of the post API: cursors and field-level error details."""

from __future__ import annotations

import pytest

from kith.common.errors import InvalidArgument
from kith.post.domain import POST_MAX_CHARS, check_text
from kith.post.grpc_api import Fields, decode_cursor, encode_cursor


@pytest.mark.parametrize("seq", [0, 1, 17, 2**40])
def test_cursor_round_trip(seq: int) -> None:
    cursor = encode_cursor(seq)
    assert decode_cursor(cursor) == seq


def test_empty_cursor_is_the_start() -> None:
    assert decode_cursor("") == 0


@pytest.mark.parametrize("cursor", ["nope", "!!!", encode_cursor(3)[:-2] + "x", "YzE6LTE="])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decode_cursor(cursor)
    assert err.value.details == {"cursor": "is not a cursor from this list"}


def test_fields_report_every_problem_at_once() -> None:
    f = Fields()
    assert f.uuid("actor_id", "5b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f") \
        == "5b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f"
    f.uuid("post_id", "42")
    f.rule(check_text, "", POST_MAX_CHARS, fallback="")
    with pytest.raises(InvalidArgument) as err:
        f.done()
    assert set(err.value.details) == {"post_id", "text"}


def test_uuid_is_normalised() -> None:
    f = Fields()
    assert f.uuid("x", "5B8F4A6E4A3C4B1B9D7E0A1B2C3D4E5F") == "5b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f"
    f.done()
