"""``kith bench gateway``: home-feed reads through the gateway at a stated request rate.

identity, graph, post and feed (server and fan-out worker) run as their own
processes, and the gateway as ``kith gateway serve`` (gunicorn, ``--workers`` x
``--threads``), against databases and topics of this run; PostgreSQL and Kafka
are embedded ones started here unless ``KITH_PG_DSN`` / ``KITH_KAFKA_BOOTSTRAP``
name existing servers. The gateway runs with its production path intact: JWT
verification with the cached revocation check, rate limiting counted in
PostgreSQL (with limits high enough not to refuse), metrics.

A small world is seeded over HTTP (``--users`` members of ``--niches`` niches,
``--posts`` posts, fanned out), then an open-loop generator on this machine
issues ``GET /v1/feed?limit=20`` at ``--rate`` per second for ``--seconds``
from keep-alive connections, each request as a random member. Latency is
measured from each request's *scheduled* time, so a stalled server cannot hide
its queueing (no coordinated omission). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from hdrh.histogram import HdrHistogram

from kith_dev.benchkit import BenchInfra, Children, bench_infra, emit, progress, spawn_services
from kith_dev.infra.processes import InfraError

SERVICES = ("identity", "graph", "post", "feed")
PASSWORD = "bench-password-123"


def run_stack(infra: BenchInfra, workers: int, threads: int,
              logdir: Path) -> AbstractContextManager[Children]:
    """The four services, the fan-out worker and the gateway (rate limits out of reach)."""
    env = {"KITH_HOME": str(logdir), "KITH_GATEWAY_WORKERS": str(workers),
           "KITH_GATEWAY_THREADS": str(threads),
           "KITH_GATEWAY_RATE_LIMIT_USER": "1000000/minute",
           "KITH_GATEWAY_RATE_LIMIT_IP": "1000000/minute",
           "KITH_GATEWAY_RATE_LIMIT_SIGN_IN": "1000000/minute"}
    commands = [(svc, "serve") for svc in SERVICES] + [("feed", "fanout"), ("gateway", "serve")]
    return spawn_services(infra.settings, commands, logdir, env)


def cpu_seconds(stack: Children) -> dict[str, float]:
    """CPU time (user + system) used so far by each process of the stack, children included."""
    used: dict[str, float] = {}
    for name, proc in stack.procs:
        try:
            root = psutil.Process(proc.pid)
            total = 0.0
            for p in [root, *root.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
        used[name] = total
    return used


def call(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise InfraError(f"{method} {path}: {exc.code} {exc.read()[:200]!r}") from None
    return json.loads(raw) if raw else None


def seed(url: str, users: int, niches: int, posts: int) -> list[str]:
    """Members spread over niches, posts fanned out; returns the members' access tokens."""
    tag = os.urandom(3).hex()
    tokens = []
    for i in range(users):
        name = f"bench{i}_{tag}"
        call(url, "POST", "/v1/accounts", {"username": name, "password": PASSWORD,
                                           "display_name": f"Bench {i}"})
        tokens.append(call(url, "POST", "/v1/sessions",
                           {"username": name, "password": PASSWORD})["access_token"])
    niche_ids = []
    for n in range(niches):
        owner = tokens[n % users]
        niche = call(url, "POST", "/v1/niches", {"name": f"Bench {n}", "kind": "custom"}, owner)
        code = call(url, "POST", f"/v1/niches/{niche['id']}/invites",
                    {"max_uses": users}, owner)["code"]
        for token in tokens:
            if token != owner:
                call(url, "POST", f"/v1/invites/{code}/accept", token=token)
        niche_ids.append(niche["id"])
    rng = random.Random(7)
    for p in range(posts):
        call(url, "POST", f"/v1/niches/{rng.choice(niche_ids)}/posts",
             {"text": f"bench post {p}"}, rng.choice(tokens))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every member's page is full once fan-out caught up
        if all(len(call(url, "GET", "/v1/feed?limit=20", token=t)["items"]) == min(20, posts)
               for t in tokens):
            return tokens
        time.sleep(0.2)
    raise InfraError("fan-out did not fill the feeds within 60 s")


@dataclass
class Result:
    histogram: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 60_000_000, 3))
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def load(url: str, tokens: list[str], rate: float, seconds: float, connections: int) -> Result:
    """Open loop: request i is due at start + i/rate; latency counts from when it was due."""
    host, port = url.removeprefix("http://").split(":")
    result = Result()
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    next_index = iter(range(total))
    index_lock = threading.Lock()

    def worker(seed_: int) -> None:
        rng = random.Random(seed_)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        while True:
            with index_lock:
                i = next(next_index, None)
            if i is None:
                break
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            status = 0
            try:
                conn.request("GET", "/v1/feed?limit=20",
                             headers={"Authorization": f"Bearer {rng.choice(tokens)}"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            micros = int((time.perf_counter() - due) * 1_000_000)
            with result.lock:
                result.histogram.record_value(max(1, micros))
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status != 200:
                    result.errors += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith bench gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the rate, unrecorded")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--niches", type=int, default=3)
    parser.add_argument("--posts", type=int, default=200)
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        infra = stack.enter_context(bench_infra(partitions=4))
        logdir = Path(os.environ.get("KITH_HOME", ".kith")).resolve() / "bench-gateway"
        logdir.mkdir(parents=True, exist_ok=True)
        progress(f"starting services and gateway ({args.workers}x{args.threads}); logs in {logdir}")
        running = stack.enter_context(run_stack(infra, args.workers, args.threads, logdir))
        progress(f"seeding {args.users} users, {args.niches} niches, {args.posts} posts")
        tokens = seed(running.gateway_url, args.users, args.niches, args.posts)
        if args.warmup > 0:
            load(running.gateway_url, tokens, args.rate, args.warmup, args.connections)
        progress(f"measuring GET /v1/feed at {args.rate:g}/s for {args.seconds:g} s")
        cpu_before = cpu_seconds(running)
        began = time.perf_counter()
        result = load(running.gateway_url, tokens, args.rate, args.seconds, args.connections)
        elapsed = time.perf_counter() - began
        cpu_after = cpu_seconds(running)
    h = result.histogram
    requests = h.get_total_count()
    cpu_ms = {name: round((cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / requests, 2)
              for name in cpu_after if requests}
    emit("gateway", {
        "endpoint": "GET /v1/feed?limit=20",
        "target_rps": args.rate,
        "achieved_rps": round(requests / elapsed, 1),
        "requests": requests,
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "p50_ms": round(h.get_value_at_percentile(50) / 1000, 2),
        "p90_ms": round(h.get_value_at_percentile(90) / 1000, 2),
        "p99_ms": round(h.get_value_at_percentile(99) / 1000, 2),
        "max_ms": round(h.get_max_value() / 1000, 2),
        "target_p99_ms": 20,
        "seconds": args.seconds,
        "gateway": {"workers": args.workers, "threads": args.threads},
        "load": {"connections": args.connections, "users": args.users, "posts": args.posts},
        "cpu_ms_per_request": cpu_ms,
        "cpus": os.cpu_count(),
    })
    return 0
