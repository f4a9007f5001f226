"""The live event stream: one Kafka consumer per stream server, fanned out to SSE clients.

:class:`StreamHub` reads ``post.events.v1``, ``messaging.events.v1`` and ``media.events.v1`` from
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
* ``post.updated`` / ``message.updated`` — a ``MediaAttached`` (media's topic): the gateway
  attaches photos just after it created their post or message, so the creation's own event
  may be read before they are attached. Each reader who may see the carrier (confirmed as
  for the events above) gets it again with its photos, so a live view always converges on
  what a fetch would show.

Every event's SSE ``id`` is a *cursor*: the time of its record and, for every partition of
both topics, the offset after which this event was read. It is unique across topics, means
the same to every gateway process and survives restarts. A cursor written before a topic
joined :data:`TOPICS` (it has fewer offset groups) resumes that topic from where the live
consumer stood. A reconnect with ``Last-Event-ID``
(header or ``last_event_id``) first reads the log from that cursor up to where the live
consumer stood when the connection subscribed (:meth:`StreamHub.catch_up`), then goes on
live: every later event once, none missing. A cursor older than ``RESUME_WINDOW_S`` (or
pointing at records the log no longer holds) gets ``event: reset``. Relay duplicates (the
same event id at a second offset) are dropped: by the hub for live events, and per
connection over what it caught up on, including a window of records before the cursor.

A user's joins and leaves reach the hub as graph's ``MemberJoined`` / ``MemberLeft`` /
``NicheCreated`` (read live, not part of the cursor): each makes the hub forget that user's
cached niches, so whichever process serves their stream sees the change at once.

Each connection hands the hub a :class:`Sink` (the stream server's delivers into the
connection's asyncio queue); a bounded sink that is full marks its subscription closed: a
client too slow to drain it is disconnected (and reconnects) rather than slowing everyone
else down. :meth:`StreamHub.subscribe` admits at most ``per_user`` connections per user (a
handful of accounts cannot take every slot) and ``per_process`` in all.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import grpc
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kith.common.codec import AvroCodec, default_codec
from kith.common.config import Settings
from kith.common.contracts import (
    MEDIA_ATTACHED,
    MEMBER_JOINED,
    MEMBER_LEFT,
    MESSAGE_SENT,
    MESSAGES_READ,
    NICHE_CREATED,
    POST_PUBLISHED,
)
from kith.common.kafka import EventEnvelope, consumer_config
from kith.gateway import render
from kith.gateway.clients import Clients
from kith.gateway.media import photo
from kith.protos import graph_pb2, identity_pb2, media_pb2, messaging_pb2, post_pb2

log = logging.getLogger(__name__)
QUEUE_SIZE = 256
NICHE_CACHE_S = 30.0
RPC_TIMEOUT_S = 2.0
RESUME_WINDOW_S = 24 * 3600  # Last-Event-ID older than this → event: reset
DEDUPE_LOOKBACK = 5000  # records per partition before a cursor read to recognise duplicates
RECENT_IDS = 50_000  # event ids the live consumer remembers to drop relay duplicates
TOPICS = ("post", "messaging", "media")  # the order of a cursor's offset groups
MEMBERSHIPS = "graph"  # read live for joins and leaves only; never part of a cursor


@dataclass(frozen=True)
class StreamEvent:
    """One Server-Sent Event."""

    event: str
    data: dict[str, Any]
    id: str | None = None
    event_id: str | None = None  # the Kith event's id: what duplicates share (not sent)

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id else ""
        return f"{head}event: {self.event}\ndata: {json.dumps(self.data)}\n\n".encode()


class StreamLimitReached(Exception):
    """``subscribe`` refused: the user (``"user"``) or this process (``"process"``) is full."""

    def __init__(self, scope: Literal["user", "process"], limit: int) -> None:
        super().__init__(f"{scope} stream limit of {limit} reached")
        self.scope = scope
        self.limit = limit


class Sink(Protocol):
    """Where a subscription's events go; ``None`` ends the connection. Called from the hub's
    thread (and from :meth:`StreamHub.stop`); must not block."""

    def put(self, event: StreamEvent | None) -> bool:
        """Take ``event``; ``False`` when full (the subscription is then closed)."""


class Collected:
    """A sink that keeps everything in a list (no bound): for catch-up probes and tests."""

    def __init__(self) -> None:
        self.items: list[StreamEvent] = []

    def put(self, event: StreamEvent | None) -> bool:
        if event is not None:
            self.items.append(event)
        return True


@dataclass(eq=False)
class Subscription:
    user_id: str
    sink: Sink = field(default_factory=Collected)
    niches: frozenset[str] = frozenset()
    niches_at: float = float("-inf")
    closed: bool = False
    resume_from: dict[tuple[str, int], int] | None = None  # a Last-Event-ID cursor
    live_from: dict[tuple[str, int], int] = field(default_factory=dict)  # at subscribe
    reset: bool = False  # the cursor could not be honoured
    seen: set[str] = field(default_factory=set)  # event ids caught up on (duplicates)

    def offer(self, event: StreamEvent) -> None:
        if event.event_id is not None and event.event_id in self.seen:
            return
        if not self.sink.put(event):  # too slow: end this connection; the client reconnects
            self.closed = True


def encode_cursor(positions: dict[tuple[str, int], int], topics: list[str],
                  timestamp_ms: int) -> str:
    """``<ms>_<offsets of topic 1>_<offsets of topic 2>``: each group the next offsets of the
    topic's partitions 0, 1, … joined by ``-`` (a partition not yet read counts as 0)."""
    groups = []
    for topic in topics:
        count = max((p + 1 for t, p in positions if t == topic), default=0)
        groups.append("-".join(str(positions.get((topic, p), 0)) for p in range(count)))
    return "_".join([str(timestamp_ms), *groups])


def decode_cursor(cursor: str, topics: list[str]
                  ) -> tuple[int, dict[tuple[str, int], int]] | None:
    """``(timestamp_ms, positions)`` of a cursor, or ``None`` if it is not one of ours. A
    cursor of an earlier ``topics`` (fewer groups: topics are only ever added at the end)
    decodes to the positions it has."""
    fields = cursor.strip().split("_")
    if not 2 <= len(fields) <= len(topics) + 1 or not fields[0].isdigit():
        return None
    positions: dict[tuple[str, int], int] = {}
    for topic, group in zip(topics, fields[1:], strict=False):
        if not group:
            continue
        for partition, raw in enumerate(group.split("-")):
            if not raw.isdigit():
                return None
            positions[(topic, partition)] = int(raw)
    return int(fields[0]), positions


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
        self._positions: dict[tuple[str, int], int] = {}  # next offset of the live consumer
        self._recent: OrderedDict[str, None] = OrderedDict()  # live event ids (duplicates)
        self._handlers: dict[str, Callable[[dict[str, Any], StreamEvent,
                                            list[Subscription]], None]] = {
            POST_PUBLISHED: self._post_published,
            MESSAGE_SENT: self._message_sent,
            MESSAGES_READ: self._messages_read,
            MEDIA_ATTACHED: self._media_attached,
        }

    # -- connections -------------------------------------------------------------------------

    def subscribe(self, user_id: str, last_event_id: str | None = None,
                  sink: Sink | None = None) -> Subscription:
        """A new connection of ``user_id`` whose live events go to ``sink``, resuming after
        ``last_event_id`` if given (see :meth:`catch_up`); raises :class:`StreamLimitReached`
        when full."""
        sub = Subscription(user_id, sink or Collected())
        covered: set[str] = set()
        if last_event_id:
            decoded = decode_cursor(last_event_id, self._topics())
            if decoded is None or time.time() * 1000 - decoded[0] > RESUME_WINDOW_S * 1000:
                sub.reset = True
            else:
                sub.resume_from = decoded[1]
                covered = set(self._topics()[:last_event_id.count("_")])
        with self._lock:
            subs = self._subs.get(user_id, set())
            if len(subs) >= self._per_user:
                raise StreamLimitReached("user", self._per_user)
            if self._count >= self._per_process:
                raise StreamLimitReached("process", self._per_process)
            subs.add(sub)
            self._subs[user_id] = subs
            self._count += 1
            # Live events from here on reach the sink; catch_up reads the log up to here.
            sub.live_from = dict(self._positions)
            if sub.resume_from is not None:  # topics the cursor predates: nothing to catch up
                sub.resume_from.update({k: v for k, v in sub.live_from.items()
                                        if k[0] not in covered})
        self._start()
        return sub

    def _topics(self) -> list[str]:
        return [self._settings.topic(t) for t in TOPICS]

    def catch_up(self, sub: Subscription, timeout_s: float = 30.0) -> Iterator[StreamEvent]:
        """The events of ``sub``'s reader between its cursor and where the live consumer
        stood when it subscribed, in log order per partition; ``reset`` when the cursor
        cannot be honoured. Call once the hub is ready."""
        if sub.reset:
            yield StreamEvent("reset", {"reason": "last event id unknown or older than 24 h"})
            return
        if sub.resume_from is None:
            return
        with self._lock:
            live_from = dict(sub.live_from) or dict(self._positions)
        codec = self._codec = self._codec or default_codec()
        consumer = Consumer(consumer_config(self._settings.require_kafka(),
                                            f"gateway-resume-{uuid.uuid4()}"))
        found: list[StreamEvent] = []
        try:
            start: list[TopicPartition] = []
            for (topic, partition), end in live_from.items():
                cursor = sub.resume_from.get((topic, partition), 0)
                low, _high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                            timeout=10)
                if cursor < low or cursor > end:
                    yield StreamEvent("reset", {"reason": "the log no longer holds that point"})
                    return
                if cursor < end:
                    start.append(TopicPartition(topic, partition,
                                                max(low, cursor - DEDUPE_LOOKBACK)))
            if not start:
                return
            consumer.assign(start)
            missed: dict[tuple[str, int], list[tuple[Any, EventEnvelope | None, bool]]] = {}
            pending = {(tp.topic, tp.partition) for tp in start}
            deadline = time.monotonic() + timeout_s
            while pending and time.monotonic() < deadline:
                for msg in consumer.consume(500, 0.2):
                    if msg.error() is not None:
                        continue
                    key = (msg.topic(), msg.partition())
                    if key not in pending or msg.offset() >= live_from[key]:
                        continue
                    try:
                        envelope = EventEnvelope.from_message(msg)
                    except (KeyError, ValueError, TypeError, AttributeError):
                        envelope = None
                    duplicate = False
                    if envelope is not None:
                        duplicate = str(envelope.event_id) in sub.seen
                        sub.seen.add(str(envelope.event_id))
                    if msg.offset() >= sub.resume_from.get(key, 0):
                        missed.setdefault(key, []).append((msg, envelope, duplicate))
                    if msg.offset() + 1 >= live_from[key]:
                        pending.discard(key)
            # Partitions are merged in the order things happened (record time, then the
            # owning store's position), each partition kept in log order; every event's id
            # is the cursor after everything sent before it, so a resume from any of them
            # misses nothing and repeats nothing.
            position = {(t, p): sub.resume_from.get((t, p), 0) for t, p in live_from}
            for msg, envelope, duplicate in heapq.merge(
                    *missed.values(), key=lambda m: (m[0].timestamp()[1],
                                                     m[1].position if m[1] else 0)):
                position[(msg.topic(), msg.partition())] = msg.offset() + 1
                if envelope is not None and not duplicate:
                    found.extend(self._events_for(
                        sub, codec, msg, envelope,
                        encode_cursor(position, self._topics(), msg.timestamp()[1])))
        finally:
            consumer.close()
        yield from found

    def _events_for(self, sub: Subscription, codec: AvroCodec, msg: Any,
                    envelope: EventEnvelope, cursor: str) -> list[StreamEvent]:
        try:
            event_type, data = codec.decode(msg.value())
        except Exception:
            return []
        handler = self._handlers.get(event_type)
        if handler is None:
            return []
        origin = StreamEvent("", {}, cursor, str(envelope.event_id))
        return self._per_reader(handler, data, origin, [sub]).get(sub.user_id, [])

    @staticmethod
    def _per_reader(handler: Callable[[dict[str, Any], StreamEvent, list[Subscription]], None],
                    data: dict[str, Any], origin: StreamEvent, subs: list[Subscription]
                    ) -> dict[str, list[StreamEvent]]:
        """What ``handler`` confirms for each reader among ``subs``, asked once per user, not
        per connection: a user's streams (tabs, devices) share it and their cached niches."""
        groups: dict[str, list[tuple[Subscription, float]]] = {}
        for sub in subs:
            groups.setdefault(sub.user_id, []).append((sub, sub.niches_at))
        probes = []
        for user_id, group in groups.items():
            first = group[0][0]
            probes.append((Subscription(user_id, Collected(), niches=first.niches,
                                        niches_at=first.niches_at), group))
        handler(data, origin, [probe for probe, _ in probes])
        found: dict[str, list[StreamEvent]] = {}
        for probe, group in probes:
            for sub, niches_at in group:
                if sub.niches_at == niches_at:  # not refreshed meanwhile
                    sub.niches, sub.niches_at = probe.niches, probe.niches_at
            assert isinstance(probe.sink, Collected)
            if probe.sink.items:
                found[probe.user_id] = probe.sink.items
        return found

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
                    sub.sink.put(None)

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
            assignment = self._current_ends(consumer, TOPICS)
            memberships = self._memberships_end(consumer)
            with self._lock:  # a restarted consumer goes on where the last one stopped
                for tp in assignment:
                    tp.offset = self._positions.setdefault((tp.topic, tp.partition), tp.offset)
                for sub in (s for ss in self._subs.values() for s in ss if not s.live_from):
                    sub.live_from = dict(self._positions)  # subscribed before the first start
            consumer.assign(assignment + memberships)
            self.ready.set()
            while not self._stop.is_set():
                for msg in consumer.consume(500, self._poll_timeout_s):
                    if msg.error() is not None:
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("stream consumer: %s", msg.error())
                        continue
                    self._live(codec, msg)
        finally:
            self.ready.clear()
            consumer.close()

    def _live(self, codec: AvroCodec, msg: Any) -> None:
        if msg.topic() == self._settings.topic(MEMBERSHIPS):
            self._membership(codec, msg)
            return
        key = (msg.topic(), msg.partition())
        try:
            envelope: EventEnvelope | None = EventEnvelope.from_message(msg)
        except (KeyError, ValueError, TypeError, AttributeError):
            envelope = None
        with self._lock:  # the subscribers and the position move together (see subscribe)
            self._positions[key] = msg.offset() + 1
            subs = [s for ss in self._subs.values() for s in ss if not s.closed]
            cursor = encode_cursor(self._positions, self._topics(), msg.timestamp()[1]) \
                if subs else ""
        if envelope is None or not subs:
            return
        event_id = str(envelope.event_id)
        if event_id in self._recent:
            return  # a relay duplicate
        self._recent[event_id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        try:
            event_type, data = codec.decode(msg.value())
        except Exception:
            log.warning("stream: undecodable record at %s/%s/%s", msg.topic(),
                        msg.partition(), msg.offset())
            return
        handler = self._handlers.get(event_type)
        if handler is None:
            return
        found = self._per_reader(handler, data, StreamEvent("", {}, cursor, event_id), subs)
        for sub in subs:
            for event in found.get(sub.user_id, ()):
                sub.offer(event)

    def _membership(self, codec: AvroCodec, msg: Any) -> None:
        """A join or leave (or a new niche, its owner's first): that user's niches changed."""
        try:
            event_type, data = codec.decode(msg.value())
        except Exception:
            return
        if event_type in (MEMBER_JOINED, MEMBER_LEFT):
            self.refresh(str(data["user_id"]))
        elif event_type == NICHE_CREATED:
            self.refresh(str(data["owner_id"]))

    def _memberships_end(self, consumer: Consumer) -> list[TopicPartition]:
        """graph's partitions at their ends; none (cached niches only) if it has no topic."""
        try:
            return self._current_ends(consumer, (MEMBERSHIPS,))
        except KafkaException:
            log.warning("stream: no %s topic; niche changes show within %.0f s",
                        self._settings.topic(MEMBERSHIPS), NICHE_CACHE_S)
            return []

    def _current_ends(self, consumer: Consumer, services: tuple[str, ...]
                      ) -> list[TopicPartition]:
        assignment = []
        for service in services:
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

        Photos attached after this event was read follow with ``post.updated`` /
        ``message.updated`` (:meth:`_media_attached`)."""
        try:
            carrier = media_pb2.Carrier(kind=kind, id=carrier_id, parent_id=parent_id)
            reply = self._clients.media.ListAttached(media_pb2.ListAttachedRequest(
                actor_id=viewer_id, carriers=[carrier]), timeout=RPC_TIMEOUT_S)
        except grpc.RpcError:
            return []
        return [photo(i) for c in reply.items for i in c.items]

    def _post_published(self, data: dict[str, Any], origin: StreamEvent,
                        subs: list[Subscription], name: str = "feed.entry") -> None:
        niche_id, post_id = data["niche_id"], data["post_id"]
        photos: list[dict[str, Any]] | None = None
        for sub in subs:
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
            sub.offer(StreamEvent(name, rendered, origin.id, origin.event_id))

    def _message_sent(self, data: dict[str, Any], origin: StreamEvent,
                      subs: list[Subscription]) -> None:
        members = set(data["member_ids"])
        photos: list[dict[str, Any]] | None = None
        for sub in subs:
            if sub.user_id not in members:
                continue
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
                                                          "media": photos}, origin.id,
                                          origin.event_id))

    def _media_attached(self, data: dict[str, Any], origin: StreamEvent,
                        subs: list[Subscription]) -> None:
        """Photos attached to a post or message: its readers get it again, with them."""
        kind, carrier_id, parent_id = (data["carrier_kind"], data["carrier_id"],
                                       data["parent_id"])
        if kind == "post":
            try:  # the uploader is the author: they can see it, and it names the niche
                post = self._clients.post.GetPost(post_pb2.GetPostRequest(
                    viewer_id=data["uploader_id"], post_id=carrier_id), timeout=RPC_TIMEOUT_S)
            except grpc.RpcError:
                return
            self._post_published({"niche_id": post.niche_id, "post_id": carrier_id}, origin,
                                 subs, name="post.updated")
        elif kind == "message":
            photos: list[dict[str, Any]] | None = None
            for sub in subs:
                try:  # as the reader: members only (a leaver or stranger is refused)
                    self._clients.messaging.GetConversation(messaging_pb2.GetConversationRequest(
                        actor_id=sub.user_id, conversation_id=parent_id), timeout=RPC_TIMEOUT_S)
                except grpc.RpcError:
                    continue
                if photos is None:
                    photos = self._photos(sub.user_id, "message", carrier_id, parent_id)
                sub.offer(StreamEvent("message.updated", {
                    "id": carrier_id, "conversation_id": parent_id, "media": photos},
                    origin.id, origin.event_id))

    def _messages_read(self, data: dict[str, Any], origin: StreamEvent,
                       subs: list[Subscription]) -> None:
        payload = {"conversation_id": data["conversation_id"], "user_id": data["user_id"],
                   "seq": data["seq"], "read_at": render.when(data["read_at_ms"])}
        members = set(data["member_ids"])
        for sub in subs:
            if sub.user_id in members:
                sub.offer(StreamEvent("message.read", payload, origin.id, origin.event_id))

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
