"""``kith bench gateway``: home-feed reads through the gateway at a stated request rate.

identity, graph, post and feed (server and fan-out worker) run as their own
processes, and the gateway as ``kith gateway serve`` (granian, ``--workers`` x
``--threads``), against databases and topics of this run; PostgreSQL and Kafka
are embedded ones started here unless ``KITH_PG_DSN`` / ``KITH_KAFKA_BOOTSTRAP``
name existing servers. The gateway runs with its production path intact: JWT
verification with the cached revocation check, rate limiting counted in
PostgreSQL (with limits high enough not to refuse), metrics.

A small world is seeded over HTTP (``--users`` members of ``--niches`` niches,
``--posts`` posts, fanned out), then an open-loop generator on this machine
issues ``GET /v1/feed?limit=20`` at ``--rate`` per second for ``--seconds``
from keep-alive connections, each request as a random member (several rates:
``--rate 200,500``). Latency is measured from each request's *scheduled* time,
so a stalled server cannot hide its queueing (no coordinated omission).

For every rate it reports the CPU time per page of every process of the stack
(``/proc/<pid>/stat`` utime + stime deltas ÷ requests; each gateway worker,
the embedded PostgreSQL and Kafka included) and their sum. Then the read's
floor: the feed's home-page query run directly against the same feed database
(closed loop, one connection per core), in queries/s, and the end-to-end ÷ raw
ratio. The load generator runs on the same cores (its CPU is reported, not
summed). Prints one JSON line.
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
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psutil
from hdrh.histogram import HdrHistogram

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.feed.readmodel import FeedReader
from kith_dev.benchkit import BenchInfra, Children, bench_infra, emit, progress, spawn_services
from kith_dev.infra.processes import InfraError

SERVICES = ("identity", "graph", "post", "feed", "media")  # media: each page asks for photos
PASSWORD = "bench-password-123"


def run_stack(infra: BenchInfra, workers: int, threads: int, logdir: Path,
              extra: Mapping[str, str] | None = None) -> AbstractContextManager[Children]:
    """The five services, the fan-out worker and the gateway (rate limits out of reach);
    ``extra`` adds environment variables."""
    env = {"KITH_HOME": str(logdir), "KITH_GATEWAY_WORKERS": str(workers),
           "KITH_GATEWAY_THREADS": str(threads),
           "KITH_GATEWAY_RATE_LIMIT_USER": "1000000/minute",
           "KITH_GATEWAY_RATE_LIMIT_IP": "1000000/minute",
           "KITH_GATEWAY_RATE_LIMIT_SIGN_IN": "1000000/minute", **(extra or {})}
    commands = [(svc, "serve") for svc in SERVICES] + [("feed", "fanout"), ("gateway", "serve")]
    return spawn_services(infra.settings, commands, logdir, env)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of one process from ``/proc/<pid>/stat`` (``None`` once it is gone)."""
    times = proc_times_s(pid)
    return None if times is None else times[0] + times[1]


def proc_times_s(pid: int) -> tuple[float, float] | None:
    """``(utime, stime)`` of one process from ``/proc/<pid>/stat``: user and kernel CPU."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) "; field 3 is fields[0]
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


class StackCpu:
    """CPU time of every process of a benchmark's stack, by role, from ``/proc``.

    Roles: each ``kith <service> <command>`` child (the gateway's main process and each of its
    workers counted separately), and the embedded PostgreSQL (postmaster and every
    backend) and Kafka started by this benchmark — the descendants of this process. The
    load generator (this process) is reported apart and never summed. Processes that
    start during the window count from zero; one that exits during it loses its share
    (pooled connections and workers live for the whole run, so nothing notable exits).
    """

    def __init__(self, procs: list[tuple[str, Any]]) -> None:
        self.procs = procs

    def _roles(self) -> dict[int, str]:
        roles: dict[int, str] = {}
        for name, proc in self.procs:
            roles[proc.pid] = name
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                continue
            for i, child in enumerate(sorted(children, key=lambda c: c.pid)):
                roles[child.pid] = f"{name}.{i + 1}"  # gateway workers, gRPC helpers
        mine = {proc.pid for _, proc in self.procs}
        for child in psutil.Process().children(recursive=True):
            if child.pid in roles or child.pid in mine:
                continue
            try:
                name = child.name()
            except psutil.Error:
                continue
            if name.startswith(("postgres", "java")):
                roles[child.pid] = "postgres" if name.startswith("postgres") else "kafka"
        return roles

    def snapshot(self) -> dict[int, tuple[str, float, float]]:
        """``{pid: (role, CPU seconds, of which kernel seconds)}``."""
        found = {}
        for pid, role in self._roles().items():
            times = proc_times_s(pid)
            if times is not None:
                found[pid] = (role, times[0] + times[1], times[1])
        own = proc_times_s(os.getpid()) or (0.0, 0.0)
        found[os.getpid()] = ("load-generator", own[0] + own[1], own[1])
        return found

    @staticmethod
    def per_unit(before: dict[int, tuple[str, float, float]],
                 after: dict[int, tuple[str, float, float]], units: int) -> dict[str, Any]:
        """``{"per_process_ms": {role: ms per unit}, "total_ms": sum without the load
        generator, "kernel_ms": {role: the kernel's (system calls, scheduling) part}}``."""
        ms: dict[str, float] = {}
        kernel: dict[str, float] = {}
        for pid, (role, used, sys_s) in after.items():
            _, prior, prior_sys = before.get(pid, (role, 0.0, 0.0))
            ms[role] = ms.get(role, 0.0) + (used - prior) * 1000 / max(1, units)
            kernel[role] = kernel.get(role, 0.0) + (sys_s - prior_sys) * 1000 / max(1, units)
        total = sum(v for role, v in ms.items() if role != "load-generator")
        return {"per_process_ms": {k: round(v, 3) for k, v in sorted(ms.items())},
                "total_ms": round(total, 3),
                "kernel_ms": {k: round(v, 3) for k, v in sorted(kernel.items())}}


def raw_home_pages(settings: Settings, viewers: list[uuid.UUID], seconds: float,
                   threads: int, limit: int = 21) -> dict[str, Any]:
    """The read's floor: the feed service's own home-page query (``FeedReader.home_page``,
    the statement a ``GET /v1/feed`` runs) straight against the feed database, closed loop
    from ``threads`` connections, random viewers; queries/s and PostgreSQL CPU per query."""
    pool = make_pool(settings.database_url("feed"), min_size=threads, max_size=threads)
    reader = FeedReader(pool)
    stop = time.perf_counter() + seconds
    counts = [0] * threads

    def run(n: int) -> None:
        rng = random.Random(n)
        while time.perf_counter() < stop:
            reader.home_page(rng.choice(viewers), None, limit)
            counts[n] += 1

    try:
        for n in range(threads):  # warm: connections open, plans cached
            reader.home_page(viewers[n % len(viewers)], None, limit)
        pg = StackCpu([])
        before = pg.snapshot()
        began = time.perf_counter()
        workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        elapsed = time.perf_counter() - began
        queries = sum(counts)
        cpu = StackCpu.per_unit(before, pg.snapshot(), queries)["per_process_ms"]
    finally:
        pool.close()
    return {"queries_per_s": round(queries / elapsed, 1), "threads": threads,
            "queries": queries,
            "cpu_ms_per_query": {k: v for k, v in cpu.items()
                                 if k in ("postgres", "load-generator")},
            "statement": "kith.feed.readmodel.FeedReader.home_page (limit 21)"}


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
    parser.add_argument("--rate", default="200,500",
                        help="requests per second; a comma-separated list runs each in turn")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the rate, unrecorded")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--niches", type=int, default=3)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--raw-seconds", type=float, default=5.0,
                        help="duration of the raw-SQL floor (0: skip it)")
    args = parser.parse_args(argv)
    rates = [float(r) for r in str(args.rate).split(",") if r.strip()]

    runs = []
    raw: dict[str, Any] = {}
    with ExitStack() as stack:
        infra = stack.enter_context(bench_infra(partitions=4))
        logdir = Path(os.environ.get("KITH_HOME", ".kith")).resolve() / "bench-gateway"
        logdir.mkdir(parents=True, exist_ok=True)
        progress(f"starting services and gateway ({args.workers}x{args.threads}); logs in {logdir}")
        running = stack.enter_context(run_stack(infra, args.workers, args.threads, logdir))
        progress(f"seeding {args.users} users, {args.niches} niches, {args.posts} posts")
        tokens = seed(running.gateway_url, args.users, args.niches, args.posts)
        cpu = StackCpu(running.procs)
        for rate in rates:
            if args.warmup > 0:
                load(running.gateway_url, tokens, rate, args.warmup, args.connections)
            progress(f"measuring GET /v1/feed at {rate:g}/s for {args.seconds:g} s")
            before = cpu.snapshot()
            began = time.perf_counter()
            result = load(running.gateway_url, tokens, rate, args.seconds, args.connections)
            elapsed = time.perf_counter() - began
            runs.append(_summary(rate, result, elapsed,
                                 StackCpu.per_unit(before, cpu.snapshot(),
                                                   result.histogram.get_total_count())))
        if args.raw_seconds > 0:
            progress(f"raw SQL floor: the home-page query for {args.raw_seconds:g} s")
            viewers = [uuid.UUID(jwt.decode(t, options={"verify_signature": False})["sub"])
                       for t in tokens]
            raw = raw_home_pages(infra.settings, viewers, args.raw_seconds,
                                 os.cpu_count() or 2)
    best = max((r["achieved_rps"] for r in runs if r["errors"] == 0), default=0.0)
    emit("gateway", {
        "endpoint": "GET /v1/feed?limit=20",
        "runs": runs,
        "raw_sql_floor": raw,
        # The floor: what the database alone answers; the ratio, how much of it a page through
        # the whole stack keeps (capacity: cores ÷ summed CPU per page, at the highest rate).
        "end_to_end_over_raw": {
            "achieved": round(best / raw["queries_per_s"], 3) if raw else None,
            "cpu_capacity_pages_per_s": (cap := round(
                (os.cpu_count() or 2) * 1000 / runs[-1]["cpu"]["total_ms"], 1))
            if runs and runs[-1]["cpu"]["total_ms"] else None,
            "cpu_capacity_over_raw": round(cap / raw["queries_per_s"], 3)
            if raw and cap else None,
        },
        "targets": {"p99_ms_at_500_rps": 20, "cpu_ms_per_page": 2.5, "over_raw": 0.5},
        "gateway": {"workers": args.workers, "threads": args.threads},
        "load": {"connections": args.connections, "users": args.users, "posts": args.posts,
                 "seconds_per_rate": args.seconds},
        "cpus": os.cpu_count(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
    })
    return 0


def _summary(rate: float, result: Result, elapsed: float, cpu: dict[str, Any]
             ) -> dict[str, Any]:
    h = result.histogram
    requests = h.get_total_count()
    return {
        "target_rps": rate,
        "achieved_rps": round(requests / elapsed, 1),
        "requests": requests,
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "p50_ms": round(h.get_value_at_percentile(50) / 1000, 2),
        "p90_ms": round(h.get_value_at_percentile(90) / 1000, 2),
        "p99_ms": round(h.get_value_at_percentile(99) / 1000, 2),
        "max_ms": round(h.get_max_value() / 1000, 2),
        "cpu": cpu,  # ms of CPU per home-feed page, per process and summed
    }
