from hypothesis import given
from hypothesis import strategies as st

from kith.gateway.schema import array, integer, obj, string, uuid_string, validate

BODY = obj({"name": string(1, 5), "n": integer(0, 10)},
           {"ids": array(uuid_string(), 1, 2, unique=True)})


def test_valid_body_has_no_errors() -> None:
    assert validate(BODY, {"name": "abc", "n": 3}) == {}
    one = ["6f1c2a4e-8d2b-4c1e-9a55-0123456789ab"]
    assert validate(BODY, {"name": "a", "n": 0, "ids": one}) == {}


def test_each_problem_is_named_by_field() -> None:
    errors = validate(BODY, {"name": "", "n": True, "extra": 1, "ids": ["x"]})
    assert errors == {"name": "must be at least 1 characters", "n": "must be of type integer",
                      "extra": "is not a known field", "ids[0]": "must be a UUID"}
    assert validate(BODY, {}) == {"name": "is required", "n": "is required"}
    assert validate(BODY, []) == {"body": "must be of type object"}


def test_strings_that_cannot_reach_a_service_are_refused() -> None:
    assert validate(BODY, {"name": "a\x00", "n": 1}) == {"name": "must not contain NUL characters"}
    assert validate(BODY, {"name": "\ud800", "n": 1}) == {"name": "must be valid Unicode text"}


def test_bounds_and_duplicates() -> None:
    assert validate(BODY, {"name": "a", "n": 11}) == {"n": "must be at most 10"}
    same = "6f1c2a4e-8d2b-4c1e-9a55-0123456789ab"
    assert validate(BODY, {"name": "a", "n": 1, "ids": [same, same]}) == {
        "ids": "must not contain duplicates"}


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_validation_never_raises(value: object) -> None:
    assert isinstance(validate(BODY, value), dict)
