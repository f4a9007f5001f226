"""`make run` (``kith dev up``): embedded PostgreSQL and Kafka, every service, one ready line,
a clean stop, data kept across restarts, and one stack per data directory."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from kith.common.config import DEFAULT_GRPC_PORTS
from kith.common.infra.kafka import ensure_topics
from kith_dev.infra.processes import free_port

READY = re.compile(r"^kith ready: (.*) data=")
ROUND_TRIP_TOPIC = "devstack.round-trip"


class DevStackProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kith.cli", "dev", "up"], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_ready(self, timeout: float = 180.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if match := READY.match(line):
                return dict(item.split("=", 1) for item in match.group(1).split())
        raise AssertionError("no ready line:\n" + "".join(self.output[-60:]))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


@pytest.fixture
def dev_env(infra: object) -> Iterator[dict[str, str]]:
    """Environment for a dev stack of its own; ``infra`` has the broker's jars resolved.

    Its home is not under pytest's ``tmp_path``: any pytest session that starts meanwhile
    (another checkout's) resets pytest's shared temporary root to mode 0700, which locks
    the unprivileged ``embedded_postgres`` user (PostgreSQL under root) out of its data
    directory ("could not open lock file … Permission denied")."""
    repo = Path(__file__).resolve().parents[3]
    tmp_path = Path(tempfile.mkdtemp(prefix="kith-devstack-test-"))
    env = {
        **os.environ,
        "KITH_HOME": str(tmp_path / "home"),
        "KITH_PG_PORT": str(free_port()),
        "KITH_KAFKA_PORT": str(free_port()),
        "KITH_KAFKA_CONTROLLER_PORT": str(free_port()),
        "KITH_GATEWAY_PORT": str(free_port()),
        "KITH_TOPIC_PARTITIONS": "2",
        "KITH_LOG_FORMAT": "text",
    }
    for name in DEFAULT_GRPC_PORTS:
        env[f"KITH_{name.upper()}_ADDR"] = f"127.0.0.1:{free_port()}"
    for key in ("KITH_PG_DSN", "KITH_KAFKA_BOOTSTRAP"):
        env.pop(key, None)
    # Share the jar cache with the rest of the suite: one Maven download per checkout.
    (tmp_path / "home" / "kafka").mkdir(parents=True)
    (tmp_path / "home" / "kafka" / "lib").symlink_to(repo / ".kith" / "kafka" / "lib")
    try:
        yield env
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _opens_a_stream(origin: str) -> bool:
    """Sign up, sign in and open ``GET /v1/stream`` on the stack's one origin."""
    def call(path: str, body: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(
            origin + path, data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", **(headers or {})})
        return urllib.request.urlopen(request, timeout=30)

    credentials = {"username": f"dev_{uuid.uuid4().hex[:8]}", "password": "correct horse battery"}
    call("/v1/accounts", {**credentials, "display_name": "Dev"}).close()
    with call("/v1/sessions", credentials) as reply:
        token = json.load(reply)["access_token"]
    with call("/v1/stream", headers={"Authorization": f"Bearer {token}"}) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        return stream.readline().startswith(b"retry:") and stream.readline() == b": ready\n"


def test_the_dev_stack_comes_up_round_trips_and_keeps_its_data(dev_env: dict[str, str]) -> None:
    stack = DevStackProcess(dev_env)
    try:
        addresses = stack.wait_ready()
        for service in ("identity", "graph", "post", "messaging", "feed", "gateway"):
            assert service in addresses, addresses
        assert addresses["app"] == addresses["gateway"] + "/"  # the web app, same origin
        assert _opens_a_stream(addresses["gateway"])  # and the live stream, same origin
        bootstrap = addresses["kafka"]
        admin_dsn = addresses["postgres"].replace("kith_*", "kith_post")

        # A second stack on the same data directory refuses to start.
        second = subprocess.run([sys.executable, "-m", "kith.cli", "dev", "up"], env=dev_env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "already running" in second.stderr

        marker = uuid.uuid4().hex
        ensure_topics(bootstrap, [ROUND_TRIP_TOPIC], partitions=1)
        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce(ROUND_TRIP_TOPIC, key=b"k", value=marker.encode())
        assert producer.flush(10) == 0
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE dev_marker (value text)")
            conn.execute("INSERT INTO dev_marker VALUES (%s)", (marker,))
    finally:
        assert stack.stop() == 0, "".join(stack.output[-40:])
    assert any("kith: stopped" in line for line in stack.output)

    stack = DevStackProcess(dev_env)
    try:
        addresses = stack.wait_ready()
        with psycopg.connect(addresses["postgres"].replace("kith_*", "kith_post")) as conn:
            assert conn.execute("SELECT value FROM dev_marker").fetchone() == (marker,)
        consumer = Consumer({"bootstrap.servers": addresses["kafka"], "group.id": marker,
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([ROUND_TRIP_TOPIC])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while marker.encode() not in values and time.monotonic() < deadline:
            values += [m.value() for m in consumer.consume(100, 1.0) if m.error() is None]
        consumer.close()
        assert marker.encode() in values
    finally:
        assert stack.stop() == 0
