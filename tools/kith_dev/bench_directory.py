"""``kith bench directory``: the skill directory's query time, p50/p99, on a stated graph.

The graph service runs as its own process (``kith graph serve``) against a
database of this run (PostgreSQL embedded unless ``KITH_PG_DSN`` names one).
``--people`` people (default 1,000) join ``--niches`` niches (default 50, kinds
cycling through those with a skill directory, plus some families), each person
two niches; everyone lists three skills of ``SKILLS`` in each profile, and a
few co-members endorse each. Then ``--queries`` SearchSkills calls (one client
thread, as fast as answered) by random people for random 2-5 letter prefixes
time the directory end to end at graph's gRPC API: the query that
``GET /v1/skills`` makes.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from kith.common.assertion import ActorSigner
from kith.common.rpc import channel
from kith.protos import graph_pb2, graph_pb2_grpc
from kith_dev.bench_messaging import percentile
from kith_dev.benchkit import bench_infra, spawn_services

SKILLS = ["bike repair", "baking", "bookkeeping", "python", "plumbing", "painting", "piano",
          "tax returns", "tailoring", "gardening", "guitar", "german", "first aid", "french",
          "carpentry", "cooking", "childcare", "spanish", "sewing", "welding"]
KINDS = ["skills", "professional", "neighbourhood", "custom", "family"]


def arrange(graph: graph_pb2_grpc.GraphServiceStub, people: int, niches: int, rng: random.Random,
            threads: int) -> list[str]:
    users = [str(uuid.uuid4()) for _ in range(people)]
    owners = users[:niches]
    created = [graph.CreateNiche(graph_pb2.CreateNicheRequest(
        actor_id=owner, name=f"bench {i}", kind=KINDS[i % len(KINDS)]))
        for i, owner in enumerate(owners)]
    codes = [graph.CreateInvite(graph_pb2.CreateInviteRequest(
        actor_id=owners[i], niche_id=n.id, max_uses=1000)).code for i, n in enumerate(created)]
    memberships: dict[str, list[str]] = {n.id: [owners[i]] for i, n in enumerate(created)}
    joins = []
    for j, user in enumerate(users):
        picks = {j % niches, rng.randrange(niches)}
        joins += [(user, i) for i in picks if owners[i] != user]

    def join(pair: tuple[str, int]) -> None:
        user, i = pair
        graph.AcceptInvite(graph_pb2.AcceptInviteRequest(actor_id=user, code=codes[i]))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(join, joins))
        for user, i in joins:
            memberships[created[i].id].append(user)
        profiles = [(n.id, u) for n in created if n.kind != "family" for u in memberships[n.id]]

        def put(pair: tuple[str, str]) -> None:
            niche_id, user = pair
            graph.PutProfile(graph_pb2.PutProfileRequest(
                actor_id=user, niche_id=niche_id, display_name=f"P{user[:6]}",
                skills=[graph_pb2.Skill(name=s, level="expert")
                        for s in rng.sample(SKILLS, 3)]))
        list(pool.map(put, profiles))

        def endorse(pair: tuple[str, str]) -> None:
            niche_id, user = pair
            mine = graph.GetProfile(graph_pb2.GetProfileRequest(actor_id=user,
                                                                niche_id=niche_id))
            others = [o for o in memberships[niche_id] if o != user]
            for endorser in rng.sample(others, min(3, len(others))):
                graph.Endorse(graph_pb2.EndorseRequest(actor_id=endorser, niche_id=niche_id,
                                                       user_id=user,
                                                       skill=mine.skills[0].name))
        list(pool.map(endorse, profiles[::4]))
    return users


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith bench directory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--niches", type=int, default=50)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8, help="while arranging")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    workdir = Path(tempfile.mkdtemp(prefix="kith-bench-directory-"))
    try:
        with ExitStack() as stack:
            infra = stack.enter_context(bench_infra(2, durable=False))
            children = stack.enter_context(spawn_services(infra.settings, [("graph", "serve")],
                                                          workdir))
            bench = dataclasses.replace(infra.settings, grpc_addrs=children.addrs)
            signer = ActorSigner(bench.signing_key())  # the bench stands in for the gateway
            graph = graph_pb2_grpc.GraphServiceStub(channel(bench.grpc_addr("graph"),
                                                            deadline_s=30, signer=signer))
            started = time.monotonic()
            users = arrange(graph, args.people, args.niches, rng, args.threads)
            arranged_s = time.monotonic() - started
            times, hits = [], 0
            for _ in range(args.queries):
                skill = rng.choice(SKILLS)
                q = skill[:rng.randint(2, 5)]
                t0 = time.perf_counter()
                reply = graph.SearchSkills(graph_pb2.SearchSkillsRequest(
                    actor_id=rng.choice(users), q=q, limit=20))
                times.append((time.perf_counter() - t0) * 1000)
                hits += len(reply.items)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"benchmark": "directory", "people": args.people, "niches": args.niches,
                      "queries": args.queries, "arrange_s": round(arranged_s, 1),
                      "mean_items": round(hits / max(1, args.queries), 1),
                      "query_ms": {"p50": percentile(times, 50), "p99": percentile(times, 99),
                                   "max": percentile(times, 100)},
                      "infrastructure": "embedded" if infra.embedded else "external",
                      "cpus": os.cpu_count()}))
    return 0
