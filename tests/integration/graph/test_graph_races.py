"""The cap and an invite's uses hold under concurrent accepts, against the real store."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import grpc

from kith.common.rpc import error_info
from kith.protos import graph_pb2 as pb
from tests.integration.graph.graph_helpers import Graph, new_user


def race(users: list[str], attempt: Callable[[str], object]) -> Counter[str]:
    """Let every user attempt at once (a barrier releases them together); count the outcomes."""
    barrier = threading.Barrier(len(users))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(user: str) -> None:
        barrier.wait()
        try:
            attempt(user)
            outcome = "joined"
        except grpc.RpcError as exc:
            status, _, code, _ = error_info(exc)
            outcome = f"{status.name}:{code}"
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def joined_events(graph: Graph, niche_id: str) -> int:
    with graph.running.context.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE stream_id = %s"
                           " AND event_type = 'kith.graph.MemberJoined'", (niche_id,)).fetchone()
    return row[0]


def test_concurrent_accepts_at_the_cap_never_exceed_it(graph: Graph) -> None:
    owner = new_user()
    niche = graph.stub.CreateNiche(pb.CreateNicheRequest(actor_id=owner, name="Five",
                                                         kind="friends", member_cap=5))
    code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=owner, niche_id=niche.id,
                                                          max_uses=100)).code
    outcomes = race([new_user() for _ in range(12)], lambda user: graph.stub.AcceptInvite(
        pb.AcceptInviteRequest(actor_id=user, code=code)))
    assert outcomes == {"joined": 4, "FAILED_PRECONDITION:niche_full": 8}
    got = graph.stub.GetNiche(pb.GetNicheRequest(actor_id=owner, niche_id=niche.id))
    assert got.member_count == 5
    members = graph.stub.ListMembers(pb.ListMembersRequest(actor_id=owner, niche_id=niche.id))
    assert len(members.items) == 5
    assert joined_events(graph, niche.id) == 5  # the owner and four accepters, in the log too


def test_a_single_use_invite_accepted_at_once_admits_exactly_one(graph: Graph) -> None:
    owner = new_user()
    niche = graph.stub.CreateNiche(pb.CreateNicheRequest(actor_id=owner, name="Pair",
                                                         kind="family"))
    for _ in range(3):  # a few rounds: each must admit exactly one
        code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=owner,
                                                              niche_id=niche.id)).code
        outcomes = race([new_user(), new_user()], lambda user, code=code: graph.stub.AcceptInvite(
            pb.AcceptInviteRequest(actor_id=user, code=code)))
        assert outcomes == {"joined": 1, "NOT_FOUND:not_found": 1}
    assert graph.stub.GetNiche(pb.GetNicheRequest(actor_id=owner, niche_id=niche.id)
                               ).member_count == 4
    assert joined_events(graph, niche.id) == 4
