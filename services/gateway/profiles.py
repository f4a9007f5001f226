"""Display names for the ids a response mentions (one batched identity call per response)."""

from __future__ import annotations

from collections.abc import Iterable

from kith.gateway.views import Call
from kith.protos import graph_pb2, identity_pb2

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


def personas(call: Call, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``{(niche_id, user_id): display_name}`` of the personas people set in those niches
    (only niches the caller belongs to answer); one graph call."""
    keys = sorted({(n, u) for n, u in pairs if n and u})
    found: dict[tuple[str, str], str] = {}
    for start in range(0, len(keys), BATCH):
        reply = call.rpc(call.gw.clients.graph.GetPersonas, graph_pb2.GetPersonasRequest(
            actor_id=call.user_id, keys=[graph_pb2.PersonaKey(niche_id=n, user_id=u)
                                         for n, u in keys[start:start + BATCH]]))
        found.update({(p.niche_id, p.user_id): p.display_name for p in reply.items})
    return found


def names_in_niche(call: Call, niche_id: str, user_ids: Iterable[str]) -> dict[str, str]:
    """``{user_id: name}`` as the niche shows people: their persona there, else the
    account's display name (accounts that no longer exist are absent)."""
    ids = sorted({u for u in user_ids if u})
    names = display_names(call, ids)
    for (_, user_id), persona in personas(call, ((niche_id, u) for u in names)).items():
        names[user_id] = persona
    return names
