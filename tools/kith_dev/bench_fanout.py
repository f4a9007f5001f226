"""``kith bench fanout``: fan-out throughput against raw COPY, post-to-feed latency, worker RSS.

Seeds niches from the socfb-Reed98 friendship graph (each niche: a person and up
to ``--cap - 1`` of their friends), then:

1. **throughput** — pre-loads post events for at least ``--deliveries`` feed
   deliveries into the topics, times one ``kith feed fanout`` process draining
   them, and COPYs the identical rows into an identical empty table in the same
   run (same batch sizes, one transaction each);
2. **latency** — the real graph and post services run in-process; the largest
   circles become niches through graph's gRPC API, then posts are published
   through ``PostService.Publish`` at ``--rate`` per second, with the same worker
   running, and each is timed from the call's acknowledgement until readable.
   The worker writes a post's whole fan-out in one transaction, so the first
   member who can read it proves every member can (checked at the end). A few
   untimed posts warm the whole path up first. Each run also prints ``stages``
   (:func:`stage_split`: publish acknowledged, handed to Kafka by the relay, at a
   consumer, readable) and the CPU per post of every process;
3. the worker's resident memory at its start and at the end.

Starts an embedded PostgreSQL and Kafka unless ``KITH_PG_DSN`` and
``KITH_KAFKA_BOOTSTRAP`` are set. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import psutil
import psycopg
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from hdrh.histogram import HdrHistogram

from kith.common.assertion import ActorSigner
from kith.common.codec import default_codec
from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.kafka import client_security, event_headers, producer_config
from kith.common.rpc import channel
from kith.common.service import start_service
from kith.feed.readmodel import FeedReader
from kith.graph.entrypoint import SPEC as GRAPH
from kith.post.entrypoint import SPEC as POST
from kith.protos import graph_pb2, graph_pb2_grpc, post_pb2, post_pb2_grpc
from kith_dev.bench_gateway import StackCpu, proc_times_s
from kith_dev.benchkit import bench_infra, child_env
from kith_dev.infra.processes import free_port
from kith_dev.socialgraph import dataset_path, largest_circles, load_graph, random_circles

BASE_MS = 1_760_000_000_000
WARMUP_S = 2.0
WINDOW_MS = 2000  # how far a commit may lag behind a newer post's (latency watcher)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith bench fanout", description=__doc__)
    parser.add_argument("--deliveries", type=int, default=1_000_000,
                        help="feed deliveries to pre-load for the throughput run")
    parser.add_argument("--niches", type=int, default=400, help="niches seeded from the graph")
    parser.add_argument("--cap", type=int, default=150, help="largest niche")
    parser.add_argument("--batch-size", type=int, default=2000, help="worker batch (events)")
    parser.add_argument("--rate", default="100,300",
                        help="posts/s in the latency run; a comma-separated list runs each")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency run duration")
    parser.add_argument("--in-process", action="store_true",
                        help="run graph and post inside the bench process (default: processes)")
    parser.add_argument("--latency-niches", type=int, default=10,
                        help="niches (the largest circles) the latency run posts into")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--feed-size", type=int, default=1000)
    parser.add_argument("--edges", type=Path, default=dataset_path(Settings.from_env().extra))
    parser.add_argument("--keep", action="store_true",
                        help="keep the bench databases and topics")
    args = parser.parse_args(argv)

    with bench_infra(args.partitions, durable=False, keep=args.keep) as infra:
        settings = dataclasses.replace(infra.settings, feed_size=args.feed_size)
        result = _run(args, settings)
    print(json.dumps(result))
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    rng = random.Random(98)
    niches = {uuid.uuid4(): [person_id(p) for p in circle]
              for circle in random_circles(load_graph(args.edges), args.niches, args.cap, rng)}
    audience = sum(len(m) for m in niches.values()) / len(niches)
    feed_dsn = settings.database_url("feed")
    producer = Producer(producer_config(settings.require_kafka(), **{"linger.ms": 50}))
    codec = default_codec()
    graph_events = produce_graph(producer, codec, settings.topic("graph"), niches)
    producer.flush(60)
    # The niches exist before anyone posts: a first worker applies the graph events, untimed.
    worker = _start_worker(settings, args.batch_size)
    try:
        with psycopg.connect(feed_dsn, autocommit=True) as conn:
            _wait(lambda: _consumed(conn) >= len(graph_events), 600, "graph events not applied")
    finally:
        worker.terminate()
        worker.wait(30)

    # The throughput posts: niches drawn in proportion to nothing but chance, so the
    # deliveries are the realistic mix of small and large audiences.
    niche_ids = list(niches)
    posts, deliveries = 0, 0
    topic = settings.topic("post")
    while deliveries < args.deliveries:
        niche = rng.choice(niche_ids)
        members = niches[niche]
        post = uuid.uuid4()
        _produce(producer, codec, topic, post, "kith.post.PostPublished", {
            "post_id": str(post), "niche_id": str(niche), "author_id": str(rng.choice(members)),
            "text": "x" * 80, "created_at_ms": BASE_MS + posts})
        posts += 1
        deliveries += len(members)
    producer.flush(60)
    total_events = len(graph_events) + posts
    with psycopg.connect(feed_dsn, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM feed_entries").fetchone()[0]

    worker = _start_worker(settings, args.batch_size)
    try:
        proc = psutil.Process(worker.pid)
        with psycopg.connect(feed_dsn, autocommit=True) as conn:
            count = "SELECT count(*) FROM feed_entries"
            # Timed from the first committed post batch: the deliveries after it, over the time.
            _wait(lambda: _consumed(conn) > len(graph_events), 120, "the worker did not start")
            started = time.perf_counter()
            at_start = conn.execute(count).fetchone()[0]
            rss_start = proc.memory_info().rss
            _wait(lambda: _consumed(conn) >= total_events, 3600, "the worker did not drain")
            elapsed = time.perf_counter() - started
            end = conn.execute(count).fetchone()[0]
            entries, timed = end - before, end - at_start
            batches = max(1, -(-posts // args.batch_size))
        worker_rate = timed / elapsed
        copy_rate = raw_copy_rate(feed_dsn, max(1, entries // batches))
        with psycopg.connect(feed_dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # steady state: no autovacuum of the bulk load
        reads = measure_reads(feed_dsn, niches, rng)
        latency = measure_latency(settings, args.edges, args.latency_niches,
                                  [float(r) for r in str(args.rate).split(",") if r.strip()],
                                  args.seconds, rng, args.in_process, worker)
        rss_end = proc.memory_info().rss
    finally:
        worker.terminate()
        worker.wait(30)
    return {
        "bench": "fanout",
        "graph": args.edges.name,
        "niches": len(niches),
        "mean_audience": round(audience, 1),
        "max_audience": max(len(m) for m in niches.values()),
        "feed_size": args.feed_size,
        "partitions": args.partitions,
        "worker_batch_events": args.batch_size,
        "throughput": {
            "posts": posts,
            "deliveries": entries,
            "seconds": round(elapsed, 2),
            "worker_deliveries_per_s": round(worker_rate),
            "raw_copy_rows_per_s": round(copy_rate),
            "ratio": round(worker_rate / copy_rate, 3),
            "note": "worker timed from its first committed post batch to its last",
        },
        "latency": latency,
        "feed_read_sql": reads,
        "worker_rss_mb": {"start": round(rss_start / 2**20, 1), "end": round(rss_end / 2**20, 1)},
        "cpus": os.cpu_count(),
    }


def person_id(person: int) -> uuid.UUID:
    return uuid.UUID(int=(1 << 96) | person)


def produce_graph(producer: Producer, codec: Any, topic: str,
                  niches: dict[uuid.UUID, list[uuid.UUID]]) -> list[uuid.UUID]:
    streams = []
    for niche, members in niches.items():
        owner = members[0]
        events = [("kith.graph.NicheCreated", {
            "niche_id": str(niche), "owner_id": str(owner), "name": "circle", "kind": "friends",
            "description": "", "member_cap": 150, "created_at_ms": BASE_MS})]
        events += [("kith.graph.MemberJoined", {
            "niche_id": str(niche), "user_id": str(m), "role": "owner" if m == owner else "member",
            "invite_id": None, "joined_at_ms": BASE_MS}) for m in members]
        for version, (event_type, data) in enumerate(events, start=1):
            _produce(producer, codec, topic, niche, event_type, data, version)
            streams.append(niche)
    return streams


def _produce(producer: Producer, codec: Any, topic: str, stream: uuid.UUID, event_type: str,
             data: dict[str, Any], version: int = 1) -> None:
    while True:
        try:
            producer.produce(topic, key=str(stream).encode(), value=codec.encode(event_type, data),
                             headers=event_headers(event_type, uuid.uuid4(), version, 0, {}))
            return
        except BufferError:
            producer.poll(0.05)


def _start_worker(settings: Settings, batch_size: int) -> subprocess.Popen[bytes]:
    env = child_env(settings, KITH_FEED_SIZE=str(settings.feed_size),
                    KITH_FEED_BATCH_SIZE=str(batch_size))
    return subprocess.Popen([sys.executable, "-m", "kith.cli", "feed", "fanout"], env=env)


def _consumed(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets"
                            " WHERE projection = 'feed.fanout'").fetchone()[0])


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.02)


def raw_copy_rate(dsn: str, chunk: int) -> float:
    """Rows/s of a binary COPY of the worker's rows into an identical empty table."""
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS feed_entries_copy")
        conn.execute("CREATE TABLE feed_entries_copy (LIKE feed_entries INCLUDING ALL)")
        conn.commit()
        rows = conn.execute("SELECT user_id, niche_id, created_at_ms, post_id, author_id"
                            " FROM feed_entries ORDER BY created_at_ms, niche_id").fetchall()
        conn.commit()
        elapsed = 0.0
        for start in range(0, len(rows), chunk):
            began = time.perf_counter()
            with conn.cursor() as cur, cur.copy(
                    "COPY feed_entries_copy (user_id, niche_id, created_at_ms, post_id, author_id)"
                    " FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8", "int8", "uuid", "int8"])
                for row in rows[start:start + chunk]:
                    copy.write_row(row)
            conn.commit()
            elapsed += time.perf_counter() - began
        conn.execute("DROP TABLE feed_entries_copy")
        conn.commit()
    return len(rows) / elapsed


def measure_reads(dsn: str, niches: dict[uuid.UUID, list[uuid.UUID]], rng: random.Random,
                  samples: int = 500) -> dict[str, Any]:
    """p50/p99 of the home and niche page queries (21 rows), straight against the read model."""
    pool = make_pool(dsn, max_size=1, name="bench-read")
    reader = FeedReader(pool)
    home, niche = HdrHistogram(1, 60_000_000, 3), HdrHistogram(1, 60_000_000, 3)
    pairs = [(n, m) for n, members in niches.items() for m in members]
    try:
        for _ in range(samples):
            niche_id, user = rng.choice(pairs)
            began = time.perf_counter()
            reader.home_page(user, None, 21)
            home.record_value(max(1, int((time.perf_counter() - began) * 1e6)))
            began = time.perf_counter()
            reader.niche_page(user, niche_id, None, 21)
            niche.record_value(max(1, int((time.perf_counter() - began) * 1e6)))
    finally:
        pool.close()
    return {name: {"p50_ms": round(h.get_value_at_percentile(50) / 1000, 2),
                   "p99_ms": round(h.get_value_at_percentile(99) / 1000, 2)}
            for name, h in (("home_page", home), ("niche_page", niche))} | {
        "samples": samples, "path": "FeedReader SQL only (no gRPC, no hydration)"}


def measure_latency(settings: Settings, edges: Path, niche_count: int, rates: list[float],
                    seconds: float, rng: random.Random, in_process: bool,
                    worker: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    """Posts through the real post service at each of ``rates``/s; acknowledgement →
    readable, in ms, and the CPU each process spends per published post.

    Graph and post run as ``kith <service> serve`` processes, as deployed (or in this
    process with ``in_process``); the niches are the graph's largest circles, created and
    joined through graph's API. CPU per post: ``/proc`` utime + stime deltas of graph,
    post, the fan-out worker, the embedded PostgreSQL and Kafka over the publishing
    window (warm-up and drain included) ÷ posts published.
    """
    processes: list[tuple[str, Any]] = [("feed-fanout", worker)]
    addrs = {name: f"127.0.0.1:{free_port()}" for name in ("graph", "post")}
    post_metrics = 0 if in_process else free_port()
    settings = dataclasses.replace(settings, grpc_addrs={**settings.grpc_addrs, **addrs})
    stops: list[Callable[[], Any]] = []
    pool = ThreadPoolExecutor(16)
    try:
        for spec in (GRAPH, POST):
            if in_process:
                stops.append(start_service(spec, settings, address=addrs[spec.name]).stop)
            else:
                proc = _serve(settings, spec.name,
                              metrics_port=post_metrics if spec is POST else 0)
                processes.append((f"{spec.name}-serve", proc))
                stops.append(lambda proc=proc: (proc.terminate(), proc.wait(30)))
        signer = ActorSigner(settings.signing_key())  # the bench stands in for the gateway
        with channel(addrs["graph"], deadline_s=30, signer=signer) as g, \
                channel(addrs["post"], deadline_s=30, signer=signer) as p:
            for chan in (g, p):
                grpc.channel_ready_future(chan).result(timeout=120)
            circles = create_niches(graph_pb2_grpc.GraphServiceStub(g), edges, niche_count, pool)
            feed_dsn = settings.database_url("feed")
            with psycopg.connect(feed_dsn, autocommit=True) as conn:
                want = sum(len(m) for m in circles.values())
                _wait(lambda: conn.execute(
                    "SELECT count(*) FROM feed_members m JOIN feed_refs r ON r.id = m.niche_id"
                    " WHERE r.uuid = ANY(%s)", (list(circles),)).fetchone()[0] >= want,
                    300, "the worker did not apply the memberships")
            warm_up(post_pb2_grpc.PostServiceStub(p), feed_dsn, circles)
            runs = []
            cpu = StackCpu(processes)
            for rate in rates:
                lags = Backlogs(settings.database_url("post"), feed_dsn, settings.topic("post"))
                before, load_before = cpu.snapshot(), os.getloadavg()[0]
                checks_before = _membership_checks(post_metrics)
                result = _publish_and_watch(post_pb2_grpc.PostServiceStub(p), feed_dsn,
                                            circles, rate, seconds, rng, pool, lags,
                                            settings.require_kafka(), settings.topic("post"))
                checks = _membership_checks(post_metrics)
                runs.append(result | {
                    # Who answered publish's membership question: post's view or graph.
                    "membership_checks": {k: checks[k] - checks_before.get(k, 0)
                                          for k in checks},
                    "services": "in-process" if in_process else "processes",
                    # The machine's 1-minute load average at the start and end of the run:
                    # above the core count, latencies measure the queue for a CPU.
                    "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                    "cpu_ms_per_post": StackCpu.per_unit(before, cpu.snapshot(),
                                                         result["posts"])})
            return runs
    finally:
        pool.shutdown(wait=True)
        for stop in reversed(stops):
            stop()


def warm_up(stub: post_pb2_grpc.PostServiceStub, feed_dsn: str,
            circles: dict[uuid.UUID, list[str]], timeout_s: float = 300) -> None:
    """A few posts through the whole path, untimed, until readable: a fresh broker keeps a
    new idempotent producer waiting for its id ("coordinator load in progress") for
    seconds, which the first timed rate would otherwise carry as latency and CPU."""
    posts = [stub.Publish(post_pb2.PublishRequest(actor_id=members[0], niche_id=str(niche),
                                                  text="warming up")).id
             for niche, members in circles.items() for _ in range(3)]
    with psycopg.connect(feed_dsn, autocommit=True) as conn:
        _wait(lambda: conn.execute(
            "SELECT count(DISTINCT post_id) FROM feed_entries WHERE post_id = ANY(%s::uuid[])",
            (posts,)).fetchone()[0] >= len(posts), timeout_s, "the warm-up posts did not arrive")


def _membership_checks(port: int) -> dict[str, int]:
    """``kith_post_membership_checks_total`` by ``answered_by`` from post's metrics endpoint
    (empty: no endpoint, or a post without the membership view)."""
    if not port:
        return {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            text = page.read().decode()
    except OSError:
        return {}
    found = re.findall(r'^kith_post_membership_checks_total\{answered_by="(\w+)"\} (\S+)$',
                       text, re.MULTILINE)
    return {path: int(float(n)) for path, n in found}


def _serve(settings: Settings, service: str, metrics_port: int = 0) -> subprocess.Popen[bytes]:
    env = child_env(settings, KITH_FEED_SIZE=str(settings.feed_size),
                    KITH_GRAPH_ADDR=settings.grpc_addr("graph"),
                    KITH_POST_ADDR=settings.grpc_addr("post"),
                    **({"KITH_METRICS_PORT": str(metrics_port)} if metrics_port else {}))
    return subprocess.Popen([sys.executable, "-m", "kith.cli", service, "serve"], env=env)


def create_niches(stub: graph_pb2_grpc.GraphServiceStub, edges: Path, count: int,
                  pool: ThreadPoolExecutor) -> dict[uuid.UUID, list[str]]:
    """The ``count`` largest friendship circles (capped at 150), as graph niches."""
    circles: dict[uuid.UUID, list[str]] = {}
    codes: dict[uuid.UUID, str] = {}
    for centre, *friends in largest_circles(load_graph(edges), count, 150):
        owner = str(person_id(centre))
        niche = stub.CreateNiche(graph_pb2.CreateNicheRequest(
            actor_id=owner, name=f"Circle of {centre}", kind="friends", member_cap=150))
        codes[uuid.UUID(niche.id)] = stub.CreateInvite(graph_pb2.CreateInviteRequest(
            actor_id=owner, niche_id=niche.id, max_uses=149)).code
        circles[uuid.UUID(niche.id)] = [owner, *(str(person_id(f)) for f in friends)]

    def join_all(niche: uuid.UUID) -> None:  # one niche's joins in turn: they share a stream
        for member in circles[niche][1:]:
            stub.AcceptInvite(graph_pb2.AcceptInviteRequest(actor_id=member, code=codes[niche]))

    list(pool.map(join_all, circles))
    return circles


class Backlogs:
    """Where posts wait: appended but not relayed, relayed but not applied by the worker."""

    def __init__(self, post_dsn: str, feed_dsn: str, topic: str, every_s: float = 0.25) -> None:
        self.post_dsn, self.feed_dsn, self.topic, self.every_s = post_dsn, feed_dsn, topic, every_s
        self.relay_max = self.worker_max = 0
        self._next = 0.0
        # Connections kept for the run (opened in the watcher's process: not picklable), so
        # that sampling does not start two PostgreSQL backends four times a second.
        self._conns: dict[str, psycopg.Connection] = {}
        self._applied_before = self._applied()  # the topic also holds the throughput posts
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_conns": {}}

    def _conn(self, dsn: str) -> psycopg.Connection:
        if dsn not in self._conns:
            self._conns[dsn] = psycopg.connect(dsn, autocommit=True)
        return self._conns[dsn]

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns = {}

    def _applied(self) -> int:
        return int(self._conn(self.feed_dsn).execute(
            "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets"
            " WHERE projection = 'feed.fanout' AND topic = %s", (self.topic,)).fetchone()[0])

    def sample(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every_s
        appended, waiting = self._conn(self.post_dsn).execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox)").fetchone()
        applied = self._applied() - self._applied_before
        self.relay_max = max(self.relay_max, waiting)
        self.worker_max = max(self.worker_max, appended - waiting - applied)


class TopicArrivals:
    """When each post's event reached a consumer of the post topic: a thread reading every
    partition from its end, recording per stream (= post) the record's timestamp (the
    relay's ``produce()`` call: the producer sets CreateTime) and the arrival here."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.seen: dict[str, tuple[int, float]] = {}  # post → (produced ms, arrived ms)
        self._stop = threading.Event()
        self._consumer = Consumer({**client_security(), "bootstrap.servers": bootstrap,
                                   "group.id": f"bench-arrivals-{uuid.uuid4()}",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                                   "isolation.level": "read_committed", "log_level": 3})
        partitions = self._consumer.list_topics(topic, timeout=30).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # poll() returns at the first message (consume(n, timeout) would wait for n);
            # then whatever else is already fetched.
            first = self._consumer.poll(0.05)
            if first is None:
                continue
            now_ms = time.time() * 1000
            for msg in [first, *self._consumer.consume(1000, 0)]:
                if msg.error() is None and msg.key() is not None:
                    self.seen.setdefault(msg.key().decode(), (msg.timestamp()[1], now_ms))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def watch_feeds(feed_dsn: str, lags: Backlogs, probes: list[tuple[str, str]], inbox: Any,
                outbox: Any, measured_from_ms: int, bootstrap: str, topic: str) -> None:
    """In a process of its own, so that the load generator cannot delay it: poll one
    member's feed per niche for new entries and time each from the post's ``created_at``
    (set by post before it acknowledges, so this over-states ack → readable by the
    command's own duration). Stops when told how many posts to expect and has seen them.
    Also reports, per post, when its event was produced and reached a consumer of the
    topic (:class:`TopicArrivals`) and when it became readable, for the stage split."""
    histogram = HdrHistogram(1, 60_000_000, 3)  # microseconds
    seen: set[str] = set()
    visible: dict[str, tuple[int, float]] = {}  # post → (created ms, readable ms)
    expected: int | None = None
    since = {niche: measured_from_ms - WINDOW_MS for _, niche in probes}
    deadline = float("inf")
    arrivals = TopicArrivals(bootstrap, topic)
    with psycopg.connect(feed_dsn, autocommit=True) as conn:
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        outbox.put({"watcher_backend_pid": backend})
        refs = dict(conn.execute("SELECT uuid::text, id FROM feed_refs WHERE uuid = ANY(%s)",
                                 ([u for pair in probes for u in pair],)).fetchall())
        users = [refs[u] for u, _ in probes]
        niches = [refs[n] for _, n in probes]
        while expected is None or (len(seen) < expected and time.monotonic() < deadline):
            if not inbox.empty():
                expected = inbox.get()
                deadline = time.monotonic() + 60
            rows = conn.execute(
                "SELECT t.n, e.post_id::text, e.created_at_ms FROM unnest(%s::bigint[],"
                " %s::bigint[], %s::bigint[]) AS t(u, n, since) JOIN feed_entries e"
                " ON e.user_id = t.u AND e.niche_id = t.n AND e.created_at_ms > t.since",
                (users, niches, [since[n] for _, n in probes])).fetchall()
            now_ms = time.time() * 1000
            for niche, post, created in rows:
                if post in seen:
                    continue
                seen.add(post)
                key = next(n for u, n in probes if refs[n] == niche)
                since[key] = max(since[key], created - WINDOW_MS)  # commits may reorder
                if created >= measured_from_ms:
                    histogram.record_value(max(1, int((now_ms - created) * 1000)))
                    visible[post] = (created, now_ms)
            lags.sample()
            time.sleep(0.002)
    arrivals.close()
    lags.close()
    outbox.put({
        "recorded": histogram.get_total_count(),
        "p50_ms": round(histogram.get_value_at_percentile(50) / 1000, 1),
        "p99_ms": round(histogram.get_value_at_percentile(99) / 1000, 1),
        "max_ms": round(histogram.get_max_value() / 1000, 1),
        "max_events_awaiting_relay": lags.relay_max,
        "max_events_awaiting_worker": lags.worker_max,
        "_timeline": {post: (created, *arrivals.seen.get(post, (None, None)), shown)
                      for post, (created, shown) in visible.items()},
    })


def stage_split(timeline: dict[str, tuple[Any, ...]], acked_ms: dict[str, float]
                ) -> dict[str, Any]:
    """p50/p99/max (ms) of each stage a post goes through, over the posts timed end to end:

    * ``publish_ack``: ``created_at`` (taken by post before its transaction) → the load
      generator has the reply (the command, its commit, gRPC both ways);
    * ``to_relay``: ``created_at`` → the relay handed the event to its producer (the
      record's timestamp): the command, its commit and the relay's wake-up and outbox read;
    * ``kafka``: that → a consumer of the topic has it (linger, the broker's write with
      ``acks=all``, the fetch);
    * ``worker``: that → readable in the feed (the fan-out worker's poll, batch and commit,
      and this watcher's 2 ms polling).

    Same clock (one machine); each stage is over the posts for which it was seen."""
    stages: dict[str, list[float]] = {"publish_ack": [], "to_relay": [], "kafka": [],
                                      "worker": []}
    for post, (created, produced, arrived, shown) in timeline.items():
        if post in acked_ms:
            stages["publish_ack"].append(acked_ms[post] - created)
        if produced is not None and arrived is not None:
            stages["to_relay"].append(produced - created)
            stages["kafka"].append(arrived - produced)
            stages["worker"].append(shown - arrived)
    found: dict[str, Any] = {}
    for name, values in stages.items():
        values.sort()
        if values:
            found[name] = {"p50_ms": round(_percentile(values, 50), 1),
                           "p99_ms": round(_percentile(values, 99), 1),
                           "max_ms": round(values[-1], 1), "posts": len(values)}
    return found


def _percentile(ordered: list[float], pct: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _publish_and_watch(stub: post_pb2_grpc.PostServiceStub, feed_dsn: str,
                       circles: dict[uuid.UUID, list[str]], rate: float, seconds: float,
                       rng: random.Random, pool: ThreadPoolExecutor, lags: Backlogs,
                       bootstrap: str, topic: str) -> dict[str, Any]:
    checks: list[tuple[str, int]] = []
    acked_ms: dict[str, float] = {}
    began = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    inbox, results = context.Queue(), context.Queue()
    probes = [(members[-1], str(niche)) for niche, members in circles.items()]
    # The relays' producers and the consumer's first fetches warm up first.
    watcher = context.Process(target=watch_feeds, daemon=True, args=(
        feed_dsn, lags, probes, inbox, results, int((time.time() + WARMUP_S) * 1000),
        bootstrap, topic))
    watcher.start()
    watcher_pid = results.get(timeout=120)["watcher_backend_pid"]
    watcher_cpu = proc_times_s(watcher_pid) or (0.0, 0.0)

    def publish(niche: uuid.UUID, author: str) -> None:
        reply = stub.Publish(post_pb2.PublishRequest(actor_id=author, niche_id=str(niche),
                                                     text="hello, circle"))
        acked_ms[reply.id] = time.time() * 1000
        checks.append((reply.id, len(circles[niche])))

    niche_ids = list(circles)
    futures = []
    sent = 0
    while time.perf_counter() - began < seconds + WARMUP_S:
        if (delay := began + sent / rate - time.perf_counter()) > 0:
            time.sleep(delay)
        niche = rng.choice(niche_ids)
        futures.append(pool.submit(publish, niche, rng.choice(circles[niche])))
        sent += 1
    for future in futures:
        future.result()
    achieved = sent / (time.perf_counter() - began)
    inbox.put(sent)
    watcher_cpu_after = proc_times_s(watcher_pid) or watcher_cpu
    measured = results.get(timeout=300)
    watcher.join(30)
    timeline = measured.pop("_timeline")
    with psycopg.connect(feed_dsn) as conn:
        counts = dict(conn.execute(
            "SELECT post_id::text, count(*) FROM feed_entries WHERE post_id = ANY(%s::uuid[])"
            " GROUP BY post_id", ([c[0] for c in checks],)).fetchall())
    return {
        "posts": sent,
        "niches": len(circles),
        "mean_audience": round(sum(len(m) for m in circles.values()) / len(circles), 1),
        "warmup_s_not_recorded": WARMUP_S,
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(achieved, 1),
        **measured,
        # Where the time goes, stage by stage (see stage_split).
        "stages": stage_split(timeline, acked_ms),
        # The bench's own feed polling (every 2 ms) in a PostgreSQL backend: NOT in
        # cpu_ms_per_post (that backend ends before the window's last snapshot).
        "watcher_postgres_cpu_ms_per_post": round(
            (sum(watcher_cpu_after) - sum(watcher_cpu)) * 1000 / max(1, sent), 3),
        "posts_in_every_members_feed": sum(1 for post, size in checks
                                           if counts.get(post) == size),
        "path": "PostService.Publish (created_at, before the ack) → post relay → Kafka →"
                " worker → feed_entries readable",
    }
