"""Names other people read cannot hide, reorder or impersonate."""

from __future__ import annotations

import pytest

from kith.common import text


def test_names_are_nfc_and_lose_invisible_padding() -> None:
    assert text.clean("Cafe\u0301") == "Café"  # decomposed é becomes one code point
    assert text.clean("ad\u200bmin\ufeff\u2060") == "admin"
    assert text.clean("\u200dBob\u200c") == "Bob"
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # an emoji sequence keeps its joiners
    assert text.clean(family) == family


@pytest.mark.parametrize("spoof", ["evil\u202egnp.exe", "a\u2066b\u2069", "x\x00y", "line\nbreak",
                                   "bell\x07", "ctl\u2061x"])
def test_reordering_and_control_characters_are_refused(spoof: str) -> None:
    assert text.problem(text.clean(spoof)) is not None


def test_descriptions_may_have_lines() -> None:
    assert text.problem("first line\nsecond\tline", multiline=True) is None
    assert text.problem("Grandma's 90th 🎂 — Zoë & Łukasz") is None
