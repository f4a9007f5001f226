"""Text hygiene for names and titles other people see (name spoofing, invisible text).

:func:`clean` normalises to NFC and strips invisible characters that only serve
to make two names look alike (zero-width spaces, word joiners, byte-order
marks, soft hyphens, left/right marks; zero-width (non-)joiners where they join
nothing). :func:`problem` then refuses what cannot be made safe by stripping:
control characters (newlines and tabs only where ``multiline``) and the
bidirectional embeddings, overrides and isolates that can reorder what a
reader sees, plus any other invisible formatting character.
"""

from __future__ import annotations

import re
import unicodedata

STRIPPED = frozenset("\u200b\u2060\ufeff\u00ad\u180e\u200e\u200f")
JOINERS = "\u200c\u200d"  # needed inside emoji sequences and some scripts
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")
_LONE_JOINERS = re.compile(rf"^[{JOINERS}]+|[{JOINERS}]+$|(?<=\s)[{JOINERS}]+|[{JOINERS}]+(?=\s)"
                           rf"|(?<=[{JOINERS}])[{JOINERS}]+")


def clean(value: str) -> str:
    """NFC, without the invisible characters that are safe to drop."""
    value = unicodedata.normalize("NFC", value)
    value = "".join(ch for ch in value if ch not in STRIPPED)
    return _LONE_JOINERS.sub("", value)


def problem(value: str, multiline: bool = False) -> str | None:
    """Why ``value`` (already :func:`clean`) may not be shown as a name; ``None`` if fine."""
    for ch in value:
        if ch in BIDI_CONTROLS:
            return "must not contain bidirectional control characters"
        category = unicodedata.category(ch)
        if category == "Cc" and not (multiline and ch in "\n\t"):
            return "must not contain control characters"
        if category == "Cf" and ch not in JOINERS:
            return "must not contain invisible formatting characters"
    return None
