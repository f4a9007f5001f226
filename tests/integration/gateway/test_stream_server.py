"""The stream server holds open streams without a thread each: hundreds of idle streams cost no
threads, an event reaches all of them, and ordinary requests and other streams go on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import aiohttp

from tests.integration.gateway.harness import (
    EventStream,
    Gateway,
    assert_error,
    served_gateway,
    try_stream,
)

STREAMS = int(os.environ.get("KITH_TEST_STREAMS", "300"))  # more to measure (see the report)
EXECUTOR = 4


@dataclass
class ManyStreams:
    """``count`` streams of one user, opened and read by one asyncio loop in one thread."""

    url: str
    token: str
    count: int
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    ready: int = 0
    got: dict[int, float] = field(default_factory=dict)  # stream → when it saw message.new
    statuses: list[int] = field(default_factory=list)
    _stop: asyncio.Event | None = None

    async def _one(self, session: aiohttp.ClientSession, index: int) -> None:
        async with session.get(f"{self.url}/v1/stream",
                               headers={"Authorization": f"Bearer {self.token}"}) as resp:
            self.statuses.append(resp.status)
            if resp.status != 200:
                return
            async for raw in resp.content:
                line = raw.decode().strip()
                if line == ": ready":
                    self.ready += 1
                elif line == "event: message.new":
                    self.got.setdefault(index, time.monotonic())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        # One thread to resolve the address, not the default pool's several.
        self.loop.set_default_executor(ThreadPoolExecutor(1, "many-streams-resolver"))
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=None)) as session:
            tasks = [asyncio.create_task(self._one(session, i)) for i in range(self.count)]
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @contextlib.contextmanager
    def open(self) -> Iterator[ManyStreams]:
        thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),),
                                  name="many-streams-client", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while self.ready < self.count and time.monotonic() < deadline:
                assert all(s == 200 for s in self.statuses), self.statuses
                time.sleep(0.1)
            assert self.ready == self.count, f"{self.ready} of {self.count} streams ready"
            yield self
        finally:
            if self._stop is not None:
                self.loop.call_soon_threadsafe(self._stop.set)
            thread.join(30)


def threads() -> int:
    """This process's threads, as the kernel counts them."""
    return len(os.listdir("/proc/self/task"))


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def test_hundreds_of_open_streams_take_no_thread_each(gateway: Gateway) -> None:
    # ben opens STREAMS streams (his cap), ann and cat one each: then the process is full.
    # Sessions confirmed for 5 s (production's default), not per event as elsewhere in tests.
    with served_gateway(gateway.settings, streams_per_user=STREAMS,
                        streams_per_process=STREAMS + 2, stream_threads=EXECUTOR,
                        revocation_cache_s=5.0) as url:
        ann, ben, cat = (gateway.signup(n) for n in ("manyann", "manyben", "manycat"))
        for c in (ann, ben, cat):
            c.at(url)
        niche = ann.post("/v1/niches", {"name": "Many", "kind": "friends"}).json()
        code = ann.post(f"/v1/niches/{niche['id']}/invites", {"max_uses": 1}).json()["code"]
        assert ben.post(f"/v1/invites/{code}/accept").status_code == 200
        conv = ann.post("/v1/conversations", {"member_ids": [ben.user_id]}).json()
        first = EventStream(cat)  # the hub's consumer and the executor are up from here on
        try:
            before, memory_before = threads(), rss_mib()
            opening = time.monotonic()
            names = {t.name for t in threading.enumerate()}
            with ManyStreams(url, ben.token or "", STREAMS).open() as many:
                opened = time.monotonic() - opening
                during, memory_during = threads(), rss_mib()
                # The server's own threads are its loop, the hub's consumer and the bounded
                # executor; the client adds two (its loop, its resolver); the in-process gRPC
                # services may grow their pools a little under the burst of confirmations.
                # Nothing grows with the number of streams.
                owned = [t.name for t in threading.enumerate()
                         if t.name.startswith("stream-blocking")]
                assert len(owned) <= EXECUTOR, owned
                assert during - before <= 20 < STREAMS, (
                    before, during, sorted(t.name for t in threading.enumerate()
                                           if t.name not in names))

                # Ordinary requests and one more stream are served as before.
                assert cat.get("/v1/me").status_code == 200
                another = EventStream(ann)
                try:
                    sent_at = time.monotonic()
                    sent = ann.post(f"/v1/conversations/{conv['id']}/messages",
                                    {"client_message_id": "many-1", "text": "to all"})
                    assert sent.status_code == 201, sent.text
                    deadline = time.monotonic() + 60
                    while len(many.got) < STREAMS and time.monotonic() < deadline:
                        time.sleep(0.05)
                    assert len(many.got) == STREAMS  # one event to every one of ben's streams
                    spread = max(many.got.values()) - sent_at
                    assert_error(try_stream(ben), 429, "too_many_streams")
                    assert_error(try_stream(cat), 503, "unavailable")  # the process is full
                finally:
                    another.close()
                print(f"\n{STREAMS} streams opened in {opened:.1f} s: threads {before} -> "
                      f"{during}, RSS {memory_before:.0f} -> {memory_during:.0f} MiB (server and "
                      f"client in one process), one message to all of them in {spread:.2f} s")
        finally:
            first.close()

