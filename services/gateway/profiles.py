"""Display names for the ids a response mentions (one batched identity call per response)."""

from __future__ import annotations

from collections.abc import Iterable

from kith.gateway.http import Call
from kith.protos import identity_pb2

BATCH = 1000


def display_names(call: Call, user_ids: Iterable[str]) -> dict[str, str]:
    """``{user_id: display_name}`` for the accounts that still exist."""
    ids = sorted({u for u in user_ids if u})
    names: dict[str, str] = {}
    for start in range(0, len(ids), BATCH):
        reply = call.rpc(call.gw.clients.identity.BatchGetProfiles,
                         identity_pb2.BatchGetProfilesRequest(user_ids=ids[start:start + BATCH]))
        names.update({p.id: p.display_name for p in reply.profiles})
    return names
