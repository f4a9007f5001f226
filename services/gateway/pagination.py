"""Keyset pagination with opaque, tamper-proof cursors.

A cursor is ``base64url(json position) "." base64url(HMAC)`` under a key derived
from the JWT secret: clients cannot forge positions (a forged or garbled cursor
is a 400 naming ``cursor``), and a service's own cursor travels inside ours, so
services only ever see cursors they issued. Lists that services return whole
(niches, members, blocks) are paged here, keyset-style, on a total order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from kith.gateway.errors import invalid
from kith.gateway.schema import Schema, integer, string

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
PAGE_QUERY: dict[str, Schema] = {
    "limit": {**integer(1, MAX_LIMIT, f"page size (default {DEFAULT_LIMIT})"),
              "default": DEFAULT_LIMIT},
    "cursor": string(1, 2048, description="next_cursor of the previous page (opaque)"),
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"kith-gateway-cursor\n" + secret.encode()).digest()

    def encode(self, position: Any) -> str:
        # orjson: compact like json.dumps(separators=(",", ":")), non-ASCII as UTF-8 rather
        # than \u escapes — the MAC covers the bytes as sent, decode reads either.
        body = orjson.dumps(position)
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def decode(self, cursor: str | None) -> Any:
        """The position in ``cursor`` (``None`` for the first page)."""
        if cursor is None:
            return None
        try:
            body_part, mac_part = cursor.split(".")
            body = _unb64(body_part)
            if hmac.compare_digest(_unb64(mac_part), self._mac(body)):
                return json.loads(body)
        except ValueError:
            pass
        raise invalid({"cursor": "is not a cursor this API issued"})

    def _mac(self, body: bytes) -> bytes:
        return hmac.digest(self._key, body, "sha256")[:16]  # one C call, no HMAC object


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None

    def json(self, render: Callable[[Any], Any] = lambda x: x) -> dict[str, Any]:
        return {"items": [render(i) for i in self.items], "next_cursor": self.next_cursor}


def open_cursor(cursors: Cursors, cursor: str | None, listing: str) -> Any:
    """The position inside ``cursor``, which must have been issued for ``listing``."""
    position = cursors.decode(cursor)
    if position is None:
        return None
    if not isinstance(position, dict) or position.get("l") != listing or "p" not in position:
        raise invalid({"cursor": "does not belong to this list"})
    return position["p"]


def seal_cursor(cursors: Cursors, position: Any, listing: str) -> str | None:
    """A cursor for ``listing`` at ``position`` (``None``/empty position: no next page)."""
    if position is None or position == "" or position == 0:
        return None
    return cursors.encode({"l": listing, "p": position})


def keyset_page(items: Sequence[T], key: Callable[[T], list[Any]], limit: int,
                cursor: str | None, cursors: Cursors, listing: str) -> Page:
    """The page of ``items`` (any order) after ``cursor``, ordered by ``key``."""
    after = open_cursor(cursors, cursor, listing)
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [i for i in ordered if key(i) > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return Page(list(page), seal_cursor(cursors, key(page[-1]), listing)
                if more and page else None)
