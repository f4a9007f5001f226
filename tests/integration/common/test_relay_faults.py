"""The relay under faults: a frozen leader loses leadership within seconds, and the backlog
gauge keeps moving while the broker is away, so an alert can fire."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from kith.common.metrics import RELAY_BACKLOG
from kith.common.relay import OutboxRelay
from kith_dev.infra.processes import free_port
from tests.support.kafka import read_topic
from tests.support.ledger import DEPOSITED, ledger_codec

REPO = Path(__file__).resolve().parents[3]
TOPIC_MAX_BYTES = 20_000


def append(settings: Settings, count: int) -> None:
    pool = make_pool(settings.database_url("post"), max_size=2)
    store = EventStore(pool, ledger_codec())
    for i in range(count):
        stream = uuid.uuid4()
        store.append(stream, 0, [NewEvent(DEPOSITED, {"account_id": str(stream), "amount": i})])
    pool.close()


def start_relay(settings: Settings) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.relay_worker", settings.database_url("post"),
         settings.require_kafka(), settings.topic("post")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def leader_of(relays: list[subprocess.Popen[str]], timeout: float = 30) -> subprocess.Popen[str]:
    streams = {r.stdout: r for r in relays if r.stdout is not None}
    ready, _, _ = select.select(list(streams), [], [], timeout)
    assert ready, "no relay leads"
    line = ready[0].readline()
    assert line.strip() == "leading"
    return streams[ready[0]]


def test_a_frozen_leader_hands_over_to_a_standby_within_fifteen_seconds(
        settings: Settings) -> None:
    relays = [start_relay(settings), start_relay(settings)]
    try:
        leader = leader_of(relays)
        append(settings, 5)
        assert len(read_topic(settings.require_kafka(), settings.topic("post"), 5)) == 5
        leader.send_signal(signal.SIGSTOP)  # frozen: its TCP stack still answers keepalives
        frozen = time.monotonic()
        append(settings, 5)
        standby = leader_of([r for r in relays if r is not leader], timeout=30)
        took_over = time.monotonic() - frozen
        records = read_topic(settings.require_kafka(), settings.topic("post"), 10, 30)
        published = time.monotonic() - frozen
        print(f"standby leads {took_over:.1f} s after the freeze; all published {published:.1f} s")
        assert standby is not leader
        assert len({r.event_id for r in records}) == 10
        assert took_over <= 15
    finally:
        for relay in relays:
            relay.send_signal(signal.SIGCONT)
            relay.terminate()
            relay.wait(30)


def test_the_backlog_gauge_moves_while_the_broker_is_away(settings: Settings) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # no broker listens here
    topic = f"{settings.topic('post')}.away"
    relay = OutboxRelay(settings.database_url("post"), nowhere, topic,
                        **{"message.timeout.ms": 2000})
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        gauge = RELAY_BACKLOG.labels(topic)
        for expected in (7, 19):
            append(settings, expected - int(gauge._value.get()))
            deadline = time.monotonic() + 15
            while gauge._value.get() != expected:
                assert time.monotonic() < deadline, f"gauge {gauge._value.get()} != {expected}"
                time.sleep(0.1)
    finally:
        stop.set()
        thread.join(60)


def test_an_event_kafka_refuses_holds_back_only_its_own_stream(settings: Settings) -> None:
    topic = settings.topic("post")
    admin = AdminClient({"bootstrap.servers": settings.require_kafka()})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", str(TOPIC_MAX_BYTES),
                    incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    pool = make_pool(settings.database_url("post"), max_size=2)
    store = EventStore(pool, ledger_codec())
    huge = uuid.uuid4()  # one stream's event is too large for the topic
    store.append(huge, 0, [NewEvent(DEPOSITED, {"account_id": os.urandom(TOPIC_MAX_BYTES).hex(),
                                                "amount": 1})])
    pool.close()
    append(settings, 200)  # the others, in every partition
    relay = OutboxRelay(settings.database_url("post"), settings.require_kafka(), topic)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        records = read_topic(settings.require_kafka(), topic, 200, timeout_s=20)
        took = time.monotonic() - started
        assert len({r.event_id for r in records}) == 200, "the refused event held others back"
        assert all(r.stream_id != huge for r in records)
        append(settings, 20)  # and what comes later keeps flowing
        assert len({r.event_id for r in read_topic(settings.require_kafka(), topic, 220,
                                                   timeout_s=20)}) == 220
        with psycopg.connect(settings.database_url("post")) as conn:
            assert relay.backlog(conn) == 1  # the refused event waits in the outbox (alerts)
        print(f"200 events of other streams published {took:.1f} s after start beside an "
              "event Kafka refuses")
    finally:
        stop.set()
        thread.join(60)
