"""``kith bench enforcement``: how long a feed page can still show a post after a leave or a
block was acknowledged, when only the feed's page cache can hide it.

The stack of ``kith bench gateway`` (every service its own process, the gateway under
granian, rate limits out of reach) with the feed's lag gate held open
(``KITH_FEED_CACHE_MAX_LAG_MS`` = 1 h: once its event tail has caught up, every page is
served from memory) and the fan-out worker **stopped** once the post is in the viewer's feed,
so the feed's tables keep listing the post and the membership: a page stops showing the post
only because the cache's tail evicted the viewer's entry and post, asked again against
graph's current truth, withheld it. That is the worst case of the enforcement bound
(``docs/performance.md``); in production the gate also sends pages to the synchronous path
whenever the tail cannot prove it is caught up.

Each cycle: the viewer's page shows the author's post; the command (the viewer leaves the
niche, or blocks the author) is acknowledged at t0; the viewer's page is read back to back
until the post is gone (t1); the cycle is undone (a fresh invite accepted, or the block
lifted) and the page read until the post is back. Reports p50/p90/max of t1 - t0 per kind
(milliseconds) and the pages read per cycle. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kith_dev.bench_gateway import PASSWORD, call, run_stack
from kith_dev.benchkit import bench_infra, emit, progress
from kith_dev.infra.processes import InfraError, stop_process

GATE_OPEN_MS = "3600000"


def _shows(url: str, token: str, post_id: str) -> bool:
    return any(i["id"] == post_id for i in call(url, "GET", "/v1/feed?limit=20",
                                                 token=token)["items"])


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> int:
    """Read until ``check()`` holds; the number of pages read."""
    deadline = time.monotonic() + timeout
    pages = 0
    while time.monotonic() < deadline:
        pages += 1
        if check():
            return pages
    raise InfraError(f"{what} not reached within {timeout:g} s")


def _account(url: str, name: str) -> tuple[str, str]:
    """(user id, access token) of a new account."""
    user = call(url, "POST", "/v1/accounts", {"username": name, "password": PASSWORD,
                                              "display_name": name.title()})
    token = call(url, "POST", "/v1/sessions", {"username": name, "password": PASSWORD})
    return user["id"], token["access_token"]


def _percentiles(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    if not ordered:
        return {}

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)
    return {"cycles": len(ordered), "p50_ms": round(statistics.median(ordered), 1),
            "p90_ms": at(0.9), "max_ms": round(ordered[-1], 1)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith bench enforcement",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=40, help="cycles per kind")
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    args = parser.parse_args(argv)

    found: dict[str, list[float]] = {"leave": [], "block": []}
    pages: dict[str, list[int]] = {"leave": [], "block": []}
    with ExitStack() as stack:
        infra = stack.enter_context(bench_infra(partitions=4))
        logdir = Path(os.environ.get("KITH_HOME", ".kith")).resolve() / "bench-enforcement"
        logdir.mkdir(parents=True, exist_ok=True)
        progress(f"starting services and gateway (feed's lag gate open); logs in {logdir}")
        running = stack.enter_context(run_stack(
            infra, args.workers, args.threads, logdir,
            {"KITH_FEED_CACHE_MAX_LAG_MS": GATE_OPEN_MS}))
        url = running.gateway_url
        tag = os.urandom(3).hex()
        author_id, author = _account(url, f"author_{tag}")
        viewer_id, viewer = _account(url, f"viewer_{tag}")
        niche = call(url, "POST", "/v1/niches", {"name": "Enforcement", "kind": "custom"},
                     author)["id"]

        def join() -> None:
            code = call(url, "POST", f"/v1/niches/{niche}/invites", {"max_uses": 1},
                        author)["code"]
            call(url, "POST", f"/v1/invites/{code}/accept", token=viewer)

        join()
        post_id = call(url, "POST", f"/v1/niches/{niche}/posts", {"text": "still here?"},
                       author)["id"]
        _until(lambda: _shows(url, viewer, post_id), "the post in the viewer's feed")
        fanout = dict(running.procs)["feed-fanout"]
        stop_process(fanout)  # from here the feed's tables list the post and membership
        progress(f"fan-out worker stopped; {args.cycles} cycles of leave, then of block")

        commands: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
            "leave": (lambda: call(url, "DELETE", f"/v1/niches/{niche}/members/{viewer_id}",
                                   token=viewer), join),
            "block": (lambda: call(url, "POST", "/v1/blocks", {"user_id": author_id}, viewer),
                      lambda: call(url, "DELETE", f"/v1/blocks/{author_id}", token=viewer)),
        }
        for kind, (act, undo) in commands.items():
            for _ in range(args.cycles):
                _until(lambda: _shows(url, viewer, post_id), "the post shown again")
                _shows(url, viewer, post_id)  # served from memory now
                act()
                acknowledged = time.perf_counter()
                read = _until(lambda: not _shows(url, viewer, post_id),
                              f"the post hidden after a {kind}")
                found[kind].append((time.perf_counter() - acknowledged) * 1000)
                pages[kind].append(read)
                undo()
    emit("enforcement", {
        "measure": "command acknowledged → first feed page without the post (ms), fan-out "
                   "worker stopped, lag gate open: only the page cache's eviction hides it",
        **{kind: {**_percentiles(found[kind]),
                  "pages_read_median": statistics.median(pages[kind]) if pages[kind] else 0}
           for kind in found},
        "target_p99_ms": 250,
        "cpus": os.cpu_count(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
    })
    return 0
