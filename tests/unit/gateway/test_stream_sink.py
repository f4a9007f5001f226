"""How the hub's thread hands events to a connection on the stream server's event loop."""

from __future__ import annotations

import asyncio
import threading

from kith.gateway.live import StreamEvent, Subscription
from kith.gateway.stream_server import LoopSink


def test_a_full_sink_refuses_and_its_slow_reader_is_let_go() -> None:
    loop = asyncio.new_event_loop()
    try:
        sink = LoopSink(loop, size=2)
        sub = Subscription("reader", sink)
        for i in range(3):
            sub.offer(StreamEvent("message.new", {"i": i}))
        assert sub.closed  # the connection ends; the client reconnects and catches up
        assert sink.put(None)  # the end always fits, full or not
        assert [e.data["i"] if e else None for e in sink.drain()] == [0, 1, None]
    finally:
        loop.close()


def test_an_event_put_on_the_hubs_thread_wakes_the_connection_on_the_loop() -> None:
    async def connection() -> list[StreamEvent | None]:
        sink = LoopSink(asyncio.get_running_loop())
        threading.Thread(target=sink.put, args=(StreamEvent("feed.entry", {}),)).start()
        await asyncio.wait_for(sink.wake.wait(), 5)
        return sink.drain()

    assert [e.event for e in asyncio.run(connection()) if e] == ["feed.entry"]


def test_a_sink_whose_loop_is_gone_does_not_raise_on_the_hubs_thread() -> None:
    loop = asyncio.new_event_loop()
    sink = LoopSink(loop)
    loop.close()
    assert sink.put(StreamEvent("feed.entry", {}))
