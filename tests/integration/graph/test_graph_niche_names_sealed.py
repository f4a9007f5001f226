"""A niche's name and description are its creator's words: members read them, the log
does not. On graph.events.v1 (and so in every export) they are sealed under the niche's
own key; when the last member leaves and the niche is archived, the key is destroyed and
the read model forgets them, so nothing of the name stays readable anywhere."""

from __future__ import annotations

from kith.common import crypto
from kith.graph.niche_keys import NICHE_KEYS
from kith.protos import graph_pb2 as pb
from tests.integration.graph.graph_helpers import Graph, new_user, read_topic

NAME, DESCRIPTION = "The Okafor family", "Cousins, aunties and the new baby"


def test_a_niche_name_is_sealed_in_the_log_and_gone_with_the_niche(graph: Graph) -> None:
    owner, cousin = new_user(), new_user()
    niche = graph.stub.CreateNiche(pb.CreateNicheRequest(
        actor_id=owner, name=NAME, kind="family", description=DESCRIPTION))
    code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=owner, niche_id=niche.id,
                                                          max_uses=1)).code
    graph.stub.AcceptInvite(pb.AcceptInviteRequest(actor_id=cousin, code=code))
    seen = graph.stub.GetNiche(pb.GetNicheRequest(actor_id=cousin, niche_id=niche.id))
    assert (seen.name, seen.description) == (NAME, DESCRIPTION)  # members read them

    published = read_topic(graph.settings, "graph",
                           lambda s: any(p.key == niche.id for p in s))
    created = next(p.data for p in published if p.type == "kith.graph.NicheCreated"
                   and p.key == niche.id)
    assert NAME not in str(created) and DESCRIPTION not in str(created)
    assert crypto.is_encrypted(created["name"]) and crypto.is_encrypted(created["description"])
    with graph.running.context.pool.connection() as conn:
        stored = conn.execute("SELECT key FROM niche_keys WHERE niche_id = %s",
                              (niche.id,)).fetchone()[0]
    key = NICHE_KEYS.unwrap(stored, niche.id)
    assert crypto.decrypt(key, niche.id, created["name"]) == NAME  # under the niche's key

    # A command after creation replays the sealed creation: the aggregate still knows it.
    graph.stub.ChangeRole(pb.ChangeRoleRequest(actor_id=owner, niche_id=niche.id,
                                               user_id=cousin, role=pb.OWNER))
    for user in (owner, cousin):  # the last one out archives the niche
        graph.stub.RemoveMember(pb.RemoveMemberRequest(actor_id=user, niche_id=niche.id,
                                                       user_id=user))
    with graph.running.context.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM niche_keys WHERE niche_id = %s",
                            (niche.id,)).fetchone()[0] == 0
        row = conn.execute("SELECT archived, name, description FROM niches WHERE niche_id = %s",
                           (niche.id,)).fetchone()
    assert row == (True, "", "")  # the key is gone: the sealed name opens nowhere
