"""``kith bench messaging``: sends per second, and send → event-on-topic latency at a stated rate.

The graph and messaging services run as their own processes (``kith <svc> serve``)
against databases and topics of this run (prefix ``bench<time>p<pid>``, dropped
at the end). PostgreSQL and Kafka are embedded ones started here unless
``KITH_PG_DSN`` / ``KITH_KAFKA_BOOTSTRAP`` name existing servers.

1. **throughput** — ``--senders`` client threads send ``--messages`` messages
   into ``--conversations`` three-member conversations as fast as the service
   acknowledges them: sends/s.
2. **latency** — an open loop sends at ``--rate`` per second for
   ``--seconds``; a consumer of ``messaging.events.v1`` (what the gateway's live
   stream reads) notes when each MessageSent arrives. Reported: the send RPC
   (acknowledgement) and send → on-topic p50/p99, both from the moment the
   send is issued.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

from confluent_kafka import Consumer

from kith.common.assertion import ActorSigner
from kith.common.codec import default_codec
from kith.common.config import Settings
from kith.common.kafka import EventEnvelope, consumer_config
from kith.common.rpc import channel
from kith.protos import graph_pb2, graph_pb2_grpc, messaging_pb2_grpc
from kith.protos import messaging_pb2 as pb
from kith_dev.benchkit import BenchInfra, Children, bench_infra, spawn_services

MESSAGE_SENT = "kith.messaging.MessageSent"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (in ms, rounded)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 2)


def services(infra: BenchInfra, workdir: Path) -> AbstractContextManager[Children]:
    """Graph and messaging as child processes on the bench's databases and topics."""
    return spawn_services(infra.settings, [("graph", "serve"), ("messaging", "serve")], workdir)


class TopicWatch:
    """Notes the arrival time (perf_counter) of every MessageSent on the messaging topic."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer(consumer_config(settings.require_kafka(),
                                                  f"bench-{uuid.uuid4()}"))
        self._consumer.subscribe([settings.topic("messaging")])
        self.arrived: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="topic-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        codec = default_codec()
        while not self._stop.is_set():
            # poll, not consume: consume(n, t) waits for n messages or the whole timeout.
            msg = self._consumer.poll(0.05)
            if msg is None or msg.error() is not None:
                continue
            now = time.perf_counter()
            envelope = EventEnvelope.from_message(msg)
            if envelope.type == MESSAGE_SENT:
                self.arrived[codec.decode(envelope.payload)[1]["message_id"]] = now
        self._consumer.close()

    def wait_for(self, ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(i not in self.arrived for i in ids):
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def arrange(settings: Settings, conversations: int) -> tuple[
        messaging_pb2_grpc.MessagingServiceStub, list[tuple[str, str]]]:
    """One niche, ``conversations`` three-member conversations; ``(sender, conversation)`` pairs."""
    signer = ActorSigner(settings.signing_key())  # the bench stands in for the gateway
    graph = graph_pb2_grpc.GraphServiceStub(channel(settings.grpc_addr("graph"), signer=signer))
    messaging = messaging_pb2_grpc.MessagingServiceStub(
        channel(settings.grpc_addr("messaging"), deadline_s=30, signer=signer))
    people = [str(uuid.uuid4()) for _ in range(conversations + 2)]
    niche = graph.CreateNiche(graph_pb2.CreateNicheRequest(actor_id=people[0], name="bench",
                                                           kind="custom"))
    invite = graph.CreateInvite(graph_pb2.CreateInviteRequest(
        actor_id=people[0], niche_id=niche.id, max_uses=len(people)))
    for person in people[1:]:
        graph.AcceptInvite(graph_pb2.AcceptInviteRequest(actor_id=person, code=invite.code))
    pairs = []
    for i in range(conversations):
        members = people[i:i + 3]
        conversation = messaging.CreateConversation(pb.CreateConversationRequest(
            actor_id=members[0], member_ids=members[1:]))
        pairs.append((members[i % 3], conversation.id))
    return messaging, pairs


def send(messaging: messaging_pb2_grpc.MessagingServiceStub, sender: str,
         conversation_id: str) -> tuple[str, float, float]:
    """``(message id, issued at, acknowledged at)`` of one send."""
    issued = time.perf_counter()
    message = messaging.SendMessage(pb.SendMessageRequest(
        actor_id=sender, conversation_id=conversation_id, client_message_id=uuid.uuid4().hex,
        text="bench message " + "x" * 80))
    return message.id, issued, time.perf_counter()


def throughput(messaging: messaging_pb2_grpc.MessagingServiceStub,
               pairs: list[tuple[str, str]], messages: int, senders: int) -> dict[str, float]:
    def work(k: int) -> int:
        done = 0
        for i in range(k, messages, senders):
            send(messaging, *pairs[i % len(pairs)])
            done += 1
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        sent = sum(pool.map(work, range(senders)))
    seconds = time.perf_counter() - start
    return {"messages": sent, "senders": senders, "conversations": len(pairs),
            "seconds": round(seconds, 2), "sends_per_s": round(sent / seconds, 1)}


def latency(messaging: messaging_pb2_grpc.MessagingServiceStub, pairs: list[tuple[str, str]],
            watch: TopicWatch, rate: float, seconds: float) -> dict[str, object]:
    total = int(rate * seconds)
    results: list[tuple[str, float, float]] = []
    with ThreadPoolExecutor(16) as pool:
        start = time.perf_counter()
        futures = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, messaging, *pairs[i % len(pairs)]))
        results = [f.result() for f in futures]
    watch.wait_for([r[0] for r in results], timeout=30)
    ack = [(acked - issued) * 1000 for _, issued, acked in results]
    on_topic = [(watch.arrived[mid] - issued) * 1000 for mid, issued, _ in results
                if mid in watch.arrived]
    return {
        "rate_per_s": rate, "sent": total, "seen_on_topic": len(on_topic),
        "send_ack_ms": {"p50": percentile(ack, 50), "p99": percentile(ack, 99)},
        "send_to_topic_ms": {"p50": percentile(on_topic, 50), "p99": percentile(on_topic, 99),
                             "max": percentile(on_topic, 100)},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith bench messaging", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000, help="throughput phase sends")
    parser.add_argument("--senders", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--rate", type=float, default=100.0, help="latency phase sends/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency phase duration")
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="kith-bench-messaging-"))
    try:
        with ExitStack() as stack:
            infra = stack.enter_context(bench_infra(args.partitions, durable=False))
            children = stack.enter_context(services(infra, workdir))
            bench = dataclasses.replace(infra.settings, grpc_addrs=children.addrs)
            messaging, pairs = arrange(bench, args.conversations)
            watch = TopicWatch(bench)
            stack.callback(watch.close)
            sends = throughput(messaging, pairs, args.messages, args.senders)
            timing = latency(messaging, pairs, watch, args.rate, args.seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"benchmark": "messaging", "sends_per_s": sends["sends_per_s"],
                      "throughput": sends, "latency": timing,
                      "infrastructure": "embedded" if infra.embedded else "external",
                      "partitions": args.partitions, "cpus": os.cpu_count()}))
    return 0
