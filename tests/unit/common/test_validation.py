"""Boundary validation: every bad field is collected, then refused in one InvalidArgument."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kith.common.errors import InvalidArgument, NotFound, check
from kith.common.validation import Fields

ID = "5b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f"


def refusal(fields: Fields) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        fields.done()
    return err.value


def check_even(n: int, name: str = "n") -> int:
    check(n % 2 == 0, InvalidArgument("odd", details={name: "must be even"}))
    return n // 2


def test_a_clean_request_passes_and_values_are_normalised() -> None:
    f = Fields()
    assert f.uuid("a", ID.upper().replace("-", "")) == ID
    assert f.optional_uuid("b", "") is None
    assert f.optional_uuid("c", ID) == ID
    assert f.uuids("d", [ID, ID.upper()]) == [ID, ID]
    assert f.required("e", "x", max_chars=1) == "x"
    assert f.limit(0, default=20) == 20 and f.limit(100, default=20) == 100
    assert f.at_least("g", 0, 0) == 0
    assert f.rule(check_even, 4, fallback=-1) == 2
    assert f.rule(check_even, 6) == 3
    f.done()


def test_every_problem_is_reported_at_once() -> None:
    f = Fields()
    assert f.uuid("actor_id", "42") == "42"
    f.uuid("niche_id", "")
    f.optional_uuid("user_id", "nope")
    f.uuids("ids", [ID, "x"])
    f.uuids("many", [ID] * 3, max_ids=2)
    f.required("code", "")
    f.required("token", "abc", max_chars=2)
    f.limit(101, default=20)
    f.at_least("seq", 0, 1)
    assert f.rule(check_even, 3, "parity", fallback=-1) == -1
    f.add("session_id", "give one")
    error = refusal(f)
    assert error.code == "invalid_argument"
    assert error.details == {
        "actor_id": "must be a UUID", "niche_id": "is required", "user_id": "must be a UUID",
        "ids": "every id must be a UUID", "many": "at most 2 ids", "code": "is required",
        "token": "must be at most 2 characters", "limit": "must be 1 to 100 (0 means 20)",
        "seq": "must be at least 1", "parity": "must be even", "session_id": "give one"}
    assert error.message == "invalid request: " + ", ".join(sorted(error.details))


@pytest.mark.parametrize("value", [-1, 11])
def test_limit_bounds_follow_the_maximum(value: int) -> None:
    f = Fields()
    f.limit(value, default=5, maximum=10)
    assert refusal(f).details == {"limit": "must be 1 to 10 (0 means 5)"}


def test_rule_without_fallback_yields_none_when_refused() -> None:
    f = Fields()
    assert f.rule(check_even, 1) is None
    assert refusal(f).details == {"n": "must be even"}


def test_rule_collects_only_invalid_arguments() -> None:
    def missing() -> None:
        raise NotFound("no such niche")

    with pytest.raises(NotFound):
        Fields().rule(missing)


@given(st.uuids())
def test_any_uuid_spelling_round_trips_to_canonical_form(value: uuid.UUID) -> None:
    f = Fields()
    for spelling in (str(value), value.hex, str(value).upper(), f"{{{value}}}"):
        assert f.uuid("id", spelling) == str(value)
    f.done()
