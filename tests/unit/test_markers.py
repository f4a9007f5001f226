"""Tests are marked by their folder, so ``pytest -m unit`` and ``-m integration`` select them."""

from __future__ import annotations

import pytest


def test_a_test_under_tests_unit_is_marked_unit_and_not_integration(
    request: pytest.FixtureRequest,
) -> None:
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None
