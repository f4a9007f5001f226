"""The one table of what each kind of niche unlocks."""

from __future__ import annotations

import pytest

from kith.common.errors import InvalidArgument
from kith.graph.domain.rules import (
    KIND_RULES,
    KINDS,
    POST_TYPES,
    PROFILE_FIELDS,
    check_profile_fields_allowed,
    kinds_unlocking_view,
    rules_of,
)


def test_every_kind_has_rules_and_custom_unlocks_everything() -> None:
    assert set(KIND_RULES) == KINDS
    assert rules_of("custom").post_types == POST_TYPES
    assert rules_of("custom").profile_fields == PROFILE_FIELDS
    assert all("text" in r.post_types and "display_name" in r.profile_fields
               for r in KIND_RULES.values())


def test_each_kind_unlocks_what_it_is_for() -> None:
    assert rules_of("family").post_types == {"text", "moment"}
    assert rules_of("book_club").post_types == {"text", "highlight"}
    assert rules_of("skills").profile_fields == {"display_name", "skills"}
    assert "headline" in rules_of("professional").profile_fields
    assert kinds_unlocking_view("skill_directory") == ["custom", "neighbourhood",
                                                       "professional", "skills"]
    assert kinds_unlocking_view("upcoming") == ["custom", "family", "friends"]


def test_a_profile_field_the_kind_does_not_unlock_is_refused() -> None:
    check_profile_fields_allowed("family", ["display_name", "birthday"])
    with pytest.raises(InvalidArgument) as err:
        check_profile_fields_allowed("family", ["display_name", "skills", "headline"])
    assert err.value.code == "not_allowed_in_niche_kind"
    assert set(err.value.details) == {"skills", "headline"}
