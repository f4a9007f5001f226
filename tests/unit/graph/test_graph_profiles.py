"""A member's persona in a niche: what a kind lets it hold, skills and endorsements."""

from __future__ import annotations

import pytest

from kith.common import crypto
from kith.common.codec import default_codec
from kith.common.errors import InvalidArgument
from kith.graph.domain.profile import MemberProfile, Profile, SkillLevel, validate_profile
from kith.graph.events import MemberProfileChanged, SkillEndorsed, from_data
from kith.graph.profile_store import seal, unseal

NICHE, BEN, ANN = "n", "ben", "ann"


def profile(**fields) -> Profile:
    base = {"display_name": "", "headline": "", "birthday": "", "reading_title": "",
            "reading_author": "", "skills": []}
    return validate_profile(**{**base, **fields})


def test_profiles_are_normalised_and_every_bad_field_is_named() -> None:
    p = profile(display_name=" Benji ", skills=[(" Bike  Repair", "expert"), ("bike repair", "")])
    assert p.display_name == "Benji" and p.skills == (SkillLevel("bike repair", ""),)
    with pytest.raises(InvalidArgument) as err:
        profile(headline="x" * 121, birthday="02-30", skills=[("juggling", "guru")])
    assert set(err.value.details) == {"headline", "birthday", "skills"}
    assert profile(birthday="02-29").birthday == "02-29"


def test_a_kind_refuses_the_profile_fields_it_does_not_unlock() -> None:
    state = MemberProfile(NICHE, BEN)
    with pytest.raises(InvalidArgument) as err:
        state.put(BEN, "family", profile(skills=[("baking", "")]), 1)
    assert err.value.code == "not_allowed_in_niche_kind"
    [changed] = state.put(BEN, "custom", profile(skills=[("baking", "")], birthday="01-31"), 1)
    state.apply(changed)
    assert state.put(BEN, "custom", state.profile, 2) == []  # the same again: nothing


def test_endorsements_once_each_never_yourself_only_listed_skills() -> None:
    state = MemberProfile(NICHE, BEN)
    state.apply_all(state.put(BEN, "skills", profile(skills=[("Baking", "")]), 1))
    with pytest.raises(InvalidArgument):
        state.endorse(BEN, "skills", "baking", 2)
    with pytest.raises(InvalidArgument):
        state.endorse(ANN, "skills", "juggling", 2)
    with pytest.raises(InvalidArgument) as err:
        state.endorse(ANN, "book_club", "baking", 2)
    assert err.value.code == "not_allowed_in_niche_kind"
    state.apply_all(state.endorse(ANN, "skills", " BAKING ", 2))
    assert state.endorse(ANN, "skills", "baking", 3) == []
    assert state.withdraw_all_by(ANN, 4)[0].skill == "baking"


def test_a_profile_is_sealed_and_reads_as_empty_once_its_key_is_gone() -> None:
    event = MemberProfileChanged(NICHE, BEN, profile(display_name="Benji").to_json(), 1)
    key = crypto.new_key()
    sealed = seal(event, key)
    assert "Benji" not in sealed.profile
    codec = default_codec()
    read = from_data(*codec.decode(codec.encode(sealed.TYPE, sealed.__dict__)))
    assert unseal(read, key) == event  # type: ignore[arg-type]
    assert Profile.from_json(unseal(read, None).profile) == Profile()  # type: ignore[arg-type,union-attr]
    endorsed = seal(SkillEndorsed(NICHE, BEN, "baking", ANN, 2), key)
    assert unseal(endorsed, None).skill == ""  # type: ignore[union-attr]


def test_a_persona_cannot_spoof_a_name_with_invisible_or_reordering_characters() -> None:
    clean = validate_profile("Gr\u200bandma\u00ad Jo", "", "", "", "", [("bi\u200bke repair", "")])
    assert clean.display_name == "Grandma Jo"
    assert [s.name for s in clean.skills] == ["bike repair"]
    with pytest.raises(InvalidArgument) as refused:
        validate_profile("Jo\u202eamdnarG", "Staff\x07engineer", "", "", "", [("a\u2066b", "")])
    assert set(refused.value.details) == {"display_name", "headline", "skills"}
