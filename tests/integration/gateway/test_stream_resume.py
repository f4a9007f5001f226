"""``GET /v1/stream`` after a disconnect: with ``Last-Event-ID`` (header or query) the client
gets every event it missed, in order, none twice — from any gateway process, also after a
restart — relay duplicates never show twice, and a cursor older than 24 h gets ``reset``."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import requests

from kith.gateway.live import decode_cursor, encode_cursor
from tests.integration.gateway.harness import (
    Client,
    Gateway,
    served_gateway,
)

Event = tuple[str | None, str, dict[str, Any]]  # (id, event, data)


class Stream:
    """A ``GET /v1/stream`` whose events keep their ``id``."""

    def __init__(self, client: Client, base_url: str | None = None, header: str | None = None,
                 query: str | None = None) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.ready = threading.Event()
        headers = {"Authorization": f"Bearer {client.token}"}
        if header:
            headers["Last-Event-ID"] = header
        params = {"last_event_id": query} if query else None
        self._response = requests.get(f"{base_url or client.stream_url}/v1/stream", stream=True,
                                      headers=headers, params=params, timeout=30)
        assert self._response.status_code == 200, self._response.text
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(15)

    def _read(self) -> None:
        event_id, name = None, None
        with contextlib.suppress(requests.RequestException, AttributeError, ValueError):
            for line in self._response.iter_lines(decode_unicode=True):
                if line == ": ready":
                    self.ready.set()
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    self.events.put((event_id, name, json.loads(line[6:])))
                    event_id, name = None, None

    def take(self, count: int, timeout: float = 20.0) -> list[Event]:
        out: list[Event] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(out)} of {count} events: {out}"
            with contextlib.suppress(queue.Empty):
                out.append(self.events.get(timeout=remaining))
        return out

    def rest(self, wait: float = 1.5) -> list[Event]:
        time.sleep(wait)
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def close(self) -> None:
        self._response.close()


@contextlib.contextmanager
def second_gateway(gateway: Gateway) -> Iterator[str]:
    """Another stream server's worth of state (its own stream hub), e.g. after a restart."""
    with served_gateway(gateway.settings) as url:
        yield url


def posts(stream_events: list[Event]) -> list[str]:
    return [d["text"] for _, name, d in stream_events if name == "feed.entry"]


def test_a_reconnect_with_last_event_id_gets_every_missed_event_once_in_order(
        gateway: Gateway) -> None:
    ann, ben = gateway.signup("ann"), gateway.signup("ben")
    niche = ann.post("/v1/niches", {"name": "Resume Club", "kind": "family"}).json()
    code = ann.post(f"/v1/niches/{niche['id']}/invites", {"max_uses": 1}).json()["code"]
    assert ben.post(f"/v1/invites/{code}/accept").status_code == 200
    conv = ann.post("/v1/conversations", {"member_ids": [ben.user_id]}).json()

    live = Stream(ben)
    try:
        ann.post(f"/v1/niches/{niche['id']}/posts", {"text": "one"})
        ((first_id, name, data),) = live.take(1)
        assert name == "feed.entry" and data["text"] == "one" and first_id
    finally:
        live.close()

    # Offline: two posts and two messages.
    for text in ("two", "three"):
        ann.post(f"/v1/niches/{niche['id']}/posts", {"text": text})
    for i, text in enumerate(("m1", "m2")):
        ann.post(f"/v1/conversations/{conv['id']}/messages",
                 {"client_message_id": f"c{i}", "text": text})
    time.sleep(1.0)  # let them reach the topics

    with second_gateway(gateway) as url:  # a gateway that has never seen this client
        again = Stream(ben, url, header=first_id)
        try:
            caught = again.take(4)
            ann.post(f"/v1/niches/{niche['id']}/posts", {"text": "four"})
            caught += again.take(1)
            caught += again.rest()
        finally:
            again.close()
    assert posts(caught) == ["two", "three", "four"]
    assert [d["text"] for _, n, d in caught if n == "message.new"] == ["m1", "m2"]
    ids = [i for i, _, _ in caught]
    assert all(ids) and len(set(ids)) == len(ids) and first_id not in ids

    # The same through the query parameter, from the last id seen: nothing more, nothing again.
    again = Stream(ben, query=ids[-1])
    try:
        assert again.rest() == []
    finally:
        again.close()


def test_a_cursor_from_before_the_media_topic_joined_still_resumes(gateway: Gateway) -> None:
    ann, ben = gateway.signup("ann"), gateway.signup("ben")
    niche = ann.post("/v1/niches", {"name": "Old Cursors", "kind": "family"}).json()
    code = ann.post(f"/v1/niches/{niche['id']}/invites", {"max_uses": 1}).json()["code"]
    assert ben.post(f"/v1/invites/{code}/accept").status_code == 200
    live = Stream(ben)
    try:
        ann.post(f"/v1/niches/{niche['id']}/posts", {"text": "one"})
        ((first_id, _, _),) = live.take(1)
    finally:
        live.close()
    before_media = first_id.rsplit("_", 1)[0]  # a cursor of a gateway that read two topics
    ann.post(f"/v1/niches/{niche['id']}/posts", {"text": "two"})
    time.sleep(1.0)
    again = Stream(ben, header=before_media)
    try:
        caught = again.take(1) + again.rest()
    finally:
        again.close()
    assert [(n, d.get("text")) for _, n, d in caught] == [("feed.entry", "two")]


def test_relay_duplicates_reach_a_resuming_client_once(gateway: Gateway) -> None:
    ann, ben = gateway.signup("ann"), gateway.signup("ben")
    niche = ann.post("/v1/niches", {"name": "Dup Club", "kind": "family"}).json()
    code = ann.post(f"/v1/niches/{niche['id']}/invites", {"max_uses": 1}).json()["code"]
    assert ben.post(f"/v1/invites/{code}/accept").status_code == 200
    live = Stream(ben)
    try:
        ann.post(f"/v1/niches/{niche['id']}/posts", {"text": "before"})
        ((cursor, _, _),) = live.take(1)
        ann.post(f"/v1/niches/{niche['id']}/posts", {"text": "after"})
        live.take(1)
        # The relay crashed after Kafka acknowledged and before it recorded that: every post
        # event goes out again.
        with psycopg.connect(gateway.settings.database_url("post"), autocommit=True) as conn:
            conn.execute("INSERT INTO outbox SELECT position FROM events ON CONFLICT DO NOTHING")
        assert live.rest(2.5) == []  # the live path drops them
    finally:
        live.close()
    again = Stream(ben, header=cursor)
    try:
        assert posts(again.rest(2.5)) == ["after"]
    finally:
        again.close()


def test_a_cursor_older_than_a_day_or_unknown_gets_reset(gateway: Gateway) -> None:
    ben = gateway.signup("ben")
    topics = [gateway.settings.topic("post"), gateway.settings.topic("messaging")]
    stale = encode_cursor({(topics[0], 0): 0}, topics, int((time.time() - 25 * 3600) * 1000))
    assert decode_cursor(stale, topics) is not None
    for cursor in (stale, "12-345"):
        stream = Stream(ben, header=cursor)
        try:
            ((_, name, _),) = stream.take(1)
            assert name == "reset"
        finally:
            stream.close()
