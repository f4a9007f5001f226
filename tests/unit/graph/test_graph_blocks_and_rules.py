"""Block lists, invite terms and codes, and the event ↔ dict mapping."""

from __future__ import annotations

from dataclasses import fields

import pytest

from kith.common.codec import default_codec
from kith.common.errors import InvalidArgument
from kith.common.events import to_new_event
from kith.graph.domain.blocks import BlockList
from kith.graph.domain.rules import (
    InviteTerms,
    hash_code,
    is_well_formed_code,
    new_invite_code,
    validate_invite_terms,
)
from kith.graph.events import (
    EVENT_CLASSES,
    MemberJoined,
    UserBlocked,
    UserUnblocked,
    from_data,
)

NOW = 1_700_000_000_000


def test_blocking_is_idempotent_and_never_self() -> None:
    blocks = BlockList("me")
    with pytest.raises(InvalidArgument) as exc:
        blocks.block("me", NOW)
    assert exc.value.details == {"user_id": "is yourself"}
    assert blocks.apply_all(blocks.block("you", NOW)).blocked == {"you": NOW}
    assert blocks.block("you", NOW) == []
    assert blocks.unblock("stranger", NOW) == []
    assert blocks.unblock("you", NOW) == [UserUnblocked("me", "you", NOW)]


def test_unblock_all_lifts_every_block() -> None:
    blocks = BlockList.replay("me", [UserBlocked("me", "a", NOW), UserBlocked("me", "b", NOW)])
    assert blocks.version == 2
    assert blocks.apply_all(blocks.unblock_all(NOW)).blocked == {}


def test_invite_terms_defaults_and_bounds() -> None:
    assert validate_invite_terms(0, 0) == InviteTerms(1, 7 * 24 * 3600)
    assert validate_invite_terms(1000, 60) == InviteTerms(1000, 60)
    with pytest.raises(InvalidArgument) as exc:
        validate_invite_terms(1001, 59)
    assert set(exc.value.details) == {"max_uses", "expires_in_s"}
    with pytest.raises(InvalidArgument):
        validate_invite_terms(-1, 30 * 24 * 3600 + 1)


def test_invite_codes_are_random_url_safe_and_stored_hashed() -> None:
    codes = {new_invite_code() for _ in range(100)}
    assert len(codes) == 100
    assert all(len(c) == 16 and is_well_formed_code(c) for c in codes)
    code = codes.pop()
    assert hash_code(code) != code and len(hash_code(code)) == 64
    assert not is_well_formed_code("not a code!")


def _sample(type_name: str) -> object:
    """A value of an annotated field type (annotations are strings here)."""
    return None if "None" in type_name else 7 if type_name == "int" else "x"


def test_every_event_round_trips_through_its_avro_schema() -> None:
    codec = default_codec()
    for event_type, cls in EVENT_CLASSES.items():
        sample = cls(**{f.name: _sample(str(f.type)) for f in fields(cls)})
        new = to_new_event(sample)
        assert new.type == event_type
        assert from_data(*codec.decode(codec.encode(new.type, new.data))) == sample
    joined = MemberJoined("n", "u", "member", "inv", NOW)
    assert from_data(joined.TYPE, {**to_new_event(joined).data, "added_later": 1}) == joined
