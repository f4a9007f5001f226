"""``require``: a value that must be there, or the domain error that says it is not."""

from __future__ import annotations

import pytest

from kith.common.errors import NotFound, require


def test_require_returns_a_present_value_and_raises_the_given_error_for_none() -> None:
    assert require(0, NotFound("zero is a value")) == 0
    with pytest.raises(NotFound, match="post not found"):
        require(None, NotFound("post not found"))
