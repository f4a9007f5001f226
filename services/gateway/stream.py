"""The live event stream: one Kafka consumer per gateway process, fanned out to SSE clients.

:class:`StreamHub` reads ``post.events.v1`` and ``messaging.events.v1`` from
the current end of every partition (explicitly assigned — no consumer group,
so a new process is live at once and processes never share work) and offers
each event to the connections open in this process:

* ``feed.entry`` — a ``PostPublished`` goes to connected members of its niche.
  Candidates come from a short-lived per-connection cache of the caller's
  niches (graph); each is then confirmed by post's ``GetPost`` *as that
  viewer*, which enforces membership and blocks at read time, so a stream
  never carries a post its reader may not see.
* ``message.new`` — a ``MessageSent`` goes to the members named in the event;
  its (encrypted) text is read back through messaging as the recipient.
* ``message.read`` — a ``MessagesRead`` goes to the members named in the event.

Each connection has a bounded queue; a client too slow to drain it is
disconnected (and reconnects) rather than slowing everyone else down. Each
also holds a server thread for its whole life, so :meth:`StreamHub.subscribe`
admits at most ``per_user`` connections per user and ``per_process`` in all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kith.common.codec import AvroCodec, default_codec
from kith.common.config import Settings
from kith.common.kafka import consumer_config
from kith.gateway import render
from kith.gateway.clients import Clients
from kith.gateway.media import photo
from kith.protos import graph_pb2, identity_pb2, media_pb2, messaging_pb2, post_pb2

log = logging.getLogger(__name__)
QUEUE_SIZE = 256
NICHE_CACHE_S = 30.0
RPC_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class StreamEvent:
    """One Server-Sent Event."""

    event: str
    data: dict[str, Any]
    id: str | None = None

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id else ""
        return f"{head}event: {self.event}\ndata: {json.dumps(self.data)}\n\n".encode()


class StreamLimitReached(Exception):
    """``subscribe`` refused: the user (``"user"``) or this process (``"process"``) is full."""

    def __init__(self, scope: Literal["user", "process"], limit: int) -> None:
        super().__init__(f"{scope} stream limit of {limit} reached")
        self.scope = scope
        self.limit = limit


@dataclass(eq=False)
class Subscription:
    user_id: str
    events: queue.Queue[StreamEvent | None] = field(
        default_factory=lambda: queue.Queue(QUEUE_SIZE))
    niches: frozenset[str] = frozenset()
    niches_at: float = float("-inf")
    closed: bool = False

    def offer(self, event: StreamEvent) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:  # too slow: end this connection; the client reconnects
            self.closed = True


class StreamHub:
    def __init__(self, settings: Settings, clients: Clients, codec: AvroCodec | None = None,
                 poll_timeout_s: float = 0.2, per_user: int = 3, per_process: int = 12) -> None:
        self._settings = settings
        self._per_user = per_user
        self._per_process = per_process
        self._count = 0  # open subscriptions, all users
        self._clients = clients
        self._codec = codec
        self._poll_timeout_s = poll_timeout_s
        self._subs: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self._handlers: dict[str, Callable[[dict[str, Any], str], None]] = {
            "PostPublished": self._post_published,
            "MessageSent": self._message_sent,
            "MessagesRead": self._messages_read,
        }

    # -- connections -------------------------------------------------------------------------

    def subscribe(self, user_id: str) -> Subscription:
        """A new connection of ``user_id``; raises :class:`StreamLimitReached` when full."""
        sub = Subscription(user_id)
        with self._lock:
            subs = self._subs.get(user_id, set())
            if len(subs) >= self._per_user:
                raise StreamLimitReached("user", self._per_user)
            if self._count >= self._per_process:
                raise StreamLimitReached("process", self._per_process)
            subs.add(sub)
            self._subs[user_id] = subs
            self._count += 1
        self._start()
        return sub

    def unsubscribe(self, sub: Subscription) -> bool:
        """End a connection; idempotent (``True`` only the first time)."""
        with self._lock:
            subs = self._subs.get(sub.user_id)
            if subs is None or sub not in subs:
                return False
            subs.discard(sub)
            if not subs:
                del self._subs[sub.user_id]
            self._count -= 1
            return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            for subs in self._subs.values():
                for sub in subs:
                    with contextlib.suppress(queue.Full):
                        sub.events.put_nowait(None)

    # -- the consumer ------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="gateway-stream",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consume()
            except Exception:
                log.exception("stream consumer failed; restarting in 1 s")
                self._stop.wait(1.0)

    def _consume(self) -> None:
        codec = self._codec = self._codec or default_codec()
        bootstrap = self._settings.require_kafka()
        consumer = Consumer(consumer_config(
            bootstrap, f"gateway-stream-{uuid.uuid4()}", **{"auto.offset.reset": "latest"}))
        try:
            consumer.assign(self._current_ends(consumer))
            self.ready.set()
            while not self._stop.is_set():
                for msg in consumer.consume(500, self._poll_timeout_s):
                    if msg.error() is not None:
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("stream consumer: %s", msg.error())
                        continue
                    if not self._subs:
                        continue
                    try:
                        event_type, data = codec.decode(msg.value())
                    except Exception:
                        log.warning("stream: undecodable record at %s/%s/%s", msg.topic(),
                                    msg.partition(), msg.offset())
                        continue
                    handler = self._handlers.get(event_type.rsplit(".", 1)[-1])
                    if handler is not None:
                        handler(data, f"{msg.partition()}-{msg.offset()}")
        finally:
            self.ready.clear()
            consumer.close()

    def _current_ends(self, consumer: Consumer) -> list[TopicPartition]:
        assignment = []
        for service in ("post", "messaging"):
            topic = self._settings.topic(service)
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None:
                raise KafkaException(f"topic {topic} is not available")
            for partition in meta.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                         timeout=10)
                assignment.append(TopicPartition(topic, partition, high))
        return assignment

    def _subscribers(self, user_ids: list[str] | None = None) -> list[Subscription]:
        with self._lock:
            if user_ids is None:
                return [s for subs in self._subs.values() for s in subs if not s.closed]
            return [s for u in user_ids for s in self._subs.get(u, ()) if not s.closed]

    # -- events ------------------------------------------------------------------------------

    def _photos(self, viewer_id: str, kind: str, carrier_id: str, parent_id: str = ""
                ) -> list[dict[str, Any]]:
        """A carrier's photos (the same for every reader who may see it); [] if media is down.

        Best effort: a photo whose attach lands after this event was read shows up when the
        client next fetches the post or message (see docs/media.md)."""
        try:
            carrier = media_pb2.Carrier(kind=kind, id=carrier_id, parent_id=parent_id)
            reply = self._clients.media.ListAttached(media_pb2.ListAttachedRequest(
                actor_id=viewer_id, carriers=[carrier]), timeout=RPC_TIMEOUT_S)
        except grpc.RpcError:
            return []
        return [photo(i) for c in reply.items for i in c.items]

    def _post_published(self, data: dict[str, Any], event_id: str) -> None:
        niche_id, post_id = data["niche_id"], data["post_id"]
        photos: list[dict[str, Any]] | None = None
        for sub in self._subscribers():
            if niche_id not in self._niches_of(sub):
                continue
            try:
                post = self._clients.post.GetPost(
                    post_pb2.GetPostRequest(viewer_id=sub.user_id, post_id=post_id),
                    timeout=RPC_TIMEOUT_S)
                names = self._clients.identity.BatchGetProfiles(
                    identity_pb2.BatchGetProfilesRequest(user_ids=[post.author_id]),
                    timeout=RPC_TIMEOUT_S)
                personas = self._clients.graph.GetPersonas(graph_pb2.GetPersonasRequest(
                    actor_id=sub.user_id, keys=[graph_pb2.PersonaKey(
                        niche_id=niche_id, user_id=post.author_id)]), timeout=RPC_TIMEOUT_S)
            except grpc.RpcError:  # not visible to this reader (or not reachable): skip
                continue
            # The author as the niche shows them: their persona there, else the account's name.
            rendered = render.post(post, {**{p.id: p.display_name for p in names.profiles},
                                          **{p.user_id: p.display_name for p in personas.items}})
            if photos is None:  # asked once per event, for the first reader who sees it
                photos = self._photos(sub.user_id, "post", post_id)
            rendered["media"] = photos
            sub.offer(StreamEvent("feed.entry", rendered, event_id))

    def _message_sent(self, data: dict[str, Any], event_id: str) -> None:
        photos: list[dict[str, Any]] | None = None
        for sub in self._subscribers(list(data["member_ids"])):
            try:
                reply = self._clients.messaging.ListMessages(messaging_pb2.ListMessagesRequest(
                    actor_id=sub.user_id, conversation_id=data["conversation_id"],
                    after_seq=data["seq"] - 1, limit=1), timeout=RPC_TIMEOUT_S)
            except grpc.RpcError:
                continue
            for message in reply.items:
                if message.seq == data["seq"]:
                    if photos is None:
                        photos = self._photos(sub.user_id, "message", message.id,
                                              message.conversation_id)
                    sub.offer(StreamEvent("message.new", {**render.message(message),
                                                          "media": photos}, event_id))

    def _messages_read(self, data: dict[str, Any], event_id: str) -> None:
        payload = {"conversation_id": data["conversation_id"], "user_id": data["user_id"],
                   "seq": data["seq"], "read_at": render.when(data["read_at_ms"])}
        for sub in self._subscribers(list(data["member_ids"])):
            sub.offer(StreamEvent("message.read", payload, event_id))

    def _niches_of(self, sub: Subscription) -> frozenset[str]:
        now = time.monotonic()
        if now - sub.niches_at > NICHE_CACHE_S:
            try:
                reply = self._clients.graph.ListNiches(
                    graph_pb2.ListNichesRequest(actor_id=sub.user_id), timeout=RPC_TIMEOUT_S)
                sub.niches = frozenset(n.id for n in reply.items)
                sub.niches_at = now
            except grpc.RpcError:
                log.warning("stream: cannot list niches of a subscriber; keeping the old list")
        return sub.niches

    def refresh(self, user_id: str) -> None:
        """Forget the cached niches of ``user_id`` (after they join or leave one)."""
        for sub in self._subscribers([user_id]):
            sub.niches_at = float("-inf")
