"""The socfb-Reed98 friendship graph (who is friends with whom) and niches planned from it.

Shared by ``kith demo`` and the benchmarks. People are the graph's integer node
ids; a *circle* is one person followed by friends of theirs.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from pathlib import Path

Graph = dict[int, set[int]]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "social-graphs" / "socfb-Reed98.edges"


def dataset_path(extra: Mapping[str, str]) -> Path:
    """The edge list to read: ``KITH_DATASET`` from the given ``Settings.extra``, else the
    socfb-Reed98 file of the shared datasets next to the repository."""
    return Path(extra.get("KITH_DATASET") or DEFAULT_DATASET)


def load_graph(path: Path) -> Graph:
    """Undirected adjacency sets from an edge list: two node ids per line (space or comma
    separated, extra columns ignored); blank, ``%`` and ``#`` comment lines are skipped."""
    graph: Graph = {}
    for line in path.read_text().splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            a, b = int(parts[0]), int(parts[1])
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set()).add(a)
    return graph


def connected_slice(graph: Graph, size: int) -> list[int]:
    """``size`` people, breadth-first from the best-connected one."""
    start = max(graph, key=lambda n: len(graph[n]))
    seen, queue = [start], deque([start])
    chosen = {start}
    while queue and len(seen) < size:
        for friend in sorted(graph[queue.popleft()]):
            if friend not in chosen and len(seen) < size:
                chosen.add(friend)
                seen.append(friend)
                queue.append(friend)
    return seen


def founded_niches(graph: Graph, people: list[int], count: int,
                   size: int) -> list[tuple[int, list[int]]]:
    """``[(founder, members)]`` within ``people``: the ``count`` best-connected of them each
    found a niche with up to ``size - 1`` of their best-connected friends there."""
    chosen = set(people)
    founders = sorted(people, key=lambda n: -len(graph[n] & chosen))[:count]
    return [(f, sorted(graph[f] & chosen, key=lambda n: -len(graph[n]))[:size - 1])
            for f in founders]


def random_circles(graph: Graph, count: int, cap: int, rng: random.Random,
                   min_friends: int = 1) -> list[list[int]]:
    """``count`` overlapping circles around randomly drawn people with at least
    ``min_friends`` friends: each is the person and a random ``cap - 1`` of their friends
    (all of them if fewer), so audiences come in the graph's realistic mix of sizes."""
    people = sorted(p for p, friends in graph.items() if len(friends) >= min_friends)
    centres = rng.sample(people, min(count, len(people)))
    return [[c, *rng.sample(sorted(graph[c]), min(len(graph[c]), cap - 1))] for c in centres]


def largest_circles(graph: Graph, count: int, cap: int) -> list[list[int]]:
    """The ``count`` largest circles: the best-connected people (ties by id), each with up to
    ``cap - 1`` friends (lowest ids first)."""
    centres = sorted(graph, key=lambda p: (-len(graph[p]), p))[:count]
    return [[c, *sorted(graph[c])[:cap - 1]] for c in centres]
