"""Opaque page cursors: one codec for every keyset listing.

A cursor is the position of the last row a page showed, a few typed fields, written as
base64url JSON. :func:`decode` checks the shape and the types and answers anything else
with one error, so a service only ever continues from a position it could have issued
(the gateway also seals the cursors it hands out).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from kith.common.errors import InvalidArgument

Field = int | str | uuid.UUID


def encode(*fields: Field) -> str:
    """The cursor of a position (uuids are written as text)."""
    values = [str(f) if isinstance(f, uuid.UUID) else f for f in fields]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()
                                    ).decode().rstrip("=")


def decode(cursor: str, *kinds: type[Field]) -> tuple[Any, ...]:
    """The position ``cursor`` stands for, one value per kind (``int`` ≥ 0, ``str`` or
    ``uuid.UUID``); :func:`invalid` for anything this codec did not write."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid() from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise invalid()
    return tuple(_typed(kind, value) for kind, value in zip(kinds, values, strict=True))


def invalid() -> InvalidArgument:
    return InvalidArgument("invalid cursor", details={"cursor": "is not a cursor from this list"})


def _typed(kind: type[Field], value: object) -> Field:
    if kind is int and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if kind is str and isinstance(value, str):
        return value
    if kind is uuid.UUID and isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise invalid()
