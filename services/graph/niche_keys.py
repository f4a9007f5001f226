"""Niche names and descriptions, sealed in the log under a key of the niche.

A niche's name and description are its creator's words (often a family's name). The read
model keeps them in plain text for members; the event log, the topic and every export
hold them sealed under the niche's own data key (``niche_keys``, wrapped like every data
key), the way messaging seals a conversation's title. When the niche is archived (its
last member gone) the key is destroyed in the same transaction and the read model forgets
the text: nothing of the name stays readable anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import psycopg

from kith.common import crypto
from kith.graph.events import GraphEvent, NicheArchived, NicheCreated

NICHE_KEYS = crypto.KeyTable("graph", "niche_keys", ("niche_id",))


def seal(conn: psycopg.Connection, events: Sequence[GraphEvent]) -> list[GraphEvent]:
    """``events`` as the log records them: a creation's name and description sealed; an
    archival destroys the niche's key (in the caller's transaction)."""
    sealed: list[GraphEvent] = []
    for event in events:
        if isinstance(event, NicheCreated):
            key = NICHE_KEYS.key_for(conn, event.niche_id)
            event = replace(event, name=crypto.encrypt(key, event.niche_id, event.name),
                            description=crypto.encrypt(key, event.niche_id, event.description)
                            if event.description else "")
        elif isinstance(event, NicheArchived):
            NICHE_KEYS.destroy(conn, event.niche_id)
        sealed.append(event)
    return sealed


def unseal(stored_key: bytes | None, events: Sequence[GraphEvent]) -> list[GraphEvent]:
    """Recorded events readable again (a shredded niche's name reads as empty); events
    recorded before sealing existed are plain already. ``stored_key``: the niche's key row
    as stored (wrapped), read with the events (``EventStore.load_payloads(…, NICHE_KEYS)``,
    one statement); ``None`` once destroyed."""
    opened: list[GraphEvent] = []
    for event in events:
        if isinstance(event, NicheCreated) and crypto.is_encrypted(event.name):
            key = None if stored_key is None else NICHE_KEYS.unwrap(stored_key, event.niche_id)
            event = replace(event, name=_open(key, event.niche_id, event.name),
                            description=_open(key, event.niche_id, event.description))
        opened.append(event)
    return opened


def _open(key: bytes | None, niche_id: str, token: str) -> str:
    if not crypto.is_encrypted(token):
        return token
    try:
        return crypto.decrypt(key, niche_id, token)
    except crypto.ShreddedError:
        return ""
