"""Running a service: migrations, the gRPC server, its outbox relay and its projections.

Every ``kith <service> serve`` is :func:`serve` with that service's
:class:`ServiceSpec`; tests start the same thing in-process with
:func:`start_service`, so what is tested is what runs.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from psycopg_pool import ConnectionPool

from kith.common import crypto, logs, metrics, tracing
from kith.common.assertion import ActorVerifier
from kith.common.codec import AvroCodec, default_codec
from kith.common.commands import forget_commands
from kith.common.config import Settings
from kith.common.crypto import KeyTable
from kith.common.db import make_pool, migrate_service
from kith.common.eventstore import EventStore
from kith.common.projection import Projection, ProjectionRunner
from kith.common.relay import OutboxRelay
from kith.common.rpc import RunningServer, start_server

log = logging.getLogger(__name__)


@dataclass
class ServiceContext:
    """What a service's adapters are built from."""

    name: str
    settings: Settings
    dsn: str
    pool: ConnectionPool
    codec: AvroCodec
    store: EventStore


@dataclass(frozen=True)
class ServiceSpec:
    """How to assemble one service."""

    name: str
    package: str
    grpc_services: Sequence[str]
    register: Callable[[ServiceContext], Sequence[Callable[[grpc.Server], None]]]
    projections: Callable[[ServiceContext], Sequence[Projection]] = lambda ctx: ()
    publishes: bool = True
    pool_size: int = 16
    # Periodic chores (e.g. expiring uploads): each runs in a thread until the stop event.
    background: Callable[[ServiceContext], Sequence[Callable[[threading.Event], Any]]] = \
        lambda ctx: ()
    # Tables of data keys, wrapped under the keyring of KITH_KEY_ENCRYPTION_KEYS.
    key_tables: Sequence[KeyTable] = ()

    def use_keys(self, settings: Settings) -> None:
        """Open this service's key tables with ``settings``' keyring (a process, once)."""
        if self.key_tables:
            crypto.use_keyring(settings.keyring())


@dataclass
class RunningService:
    context: ServiceContext
    server: RunningServer
    stop_event: threading.Event
    threads: list[threading.Thread] = field(default_factory=list)
    relay: OutboxRelay | None = None
    runners: list[ProjectionRunner] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def stop(self) -> None:
        self.server.stop()
        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)
        self.context.pool.close()


def start_service(spec: ServiceSpec, settings: Settings, address: str | None = None,
                  codec: AvroCodec | None = None) -> RunningService:
    spec.use_keys(settings)
    dsn = settings.database_url(spec.name)
    migrate_service(dsn, spec.package)
    codec = codec or default_codec()
    pool = make_pool(dsn, max_size=spec.pool_size, name=spec.name)
    ctx = ServiceContext(spec.name, settings, dsn, pool, codec, EventStore(pool, codec))
    server = start_server(address or settings.grpc_addr(spec.name), spec.register(ctx),
                          spec.grpc_services, verifier=ActorVerifier(settings.verify_key()),
                          reflection_on=settings.development)
    running = RunningService(ctx, server, threading.Event())
    bootstrap = settings.kafka_bootstrap
    if spec.publishes and bootstrap:
        running.relay = OutboxRelay(dsn, bootstrap, settings.topic(spec.name))
        running.threads.append(_thread(f"{spec.name}-relay", running.relay.run, running.stop_event))
    for projection in spec.projections(ctx):
        if not bootstrap:
            break
        runner = ProjectionRunner(projection, dsn, bootstrap, codec,
                                  group_id=projection_group(settings, projection.name))
        running.runners.append(runner)
        running.threads.append(_thread(f"{spec.name}-{projection.name}", runner.run,
                                       running.stop_event))
    running.threads.append(_thread(f"{spec.name}-forget-commands",
                                   lambda stop: forget_commands(pool, stop), running.stop_event))
    for i, chore in enumerate(spec.background(ctx)):
        running.threads.append(_thread(f"{spec.name}-background-{i}", chore,
                                       running.stop_event))
    log.info("%s serving gRPC on port %d", spec.name, server.port)
    return running


def projection_group(settings: Settings, projection: str) -> str:
    """The consumer group of a projection: ``projection.<name>`` (after the topic prefix)."""
    return f"{settings.topic_prefix}projection.{projection}"


def _thread(name: str, target: Callable[[threading.Event], Any],
            stop: threading.Event) -> threading.Thread:
    def guarded() -> None:
        while not stop.is_set():
            try:
                target(stop)
            except Exception:
                log.exception("%s crashed; restarting in 1 s", name)
                stop.wait(1.0)

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread


def wait_for_signal(signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> threading.Event:
    """An event set (soon after) SIGTERM or SIGINT arrives; install from the main thread.

    No lock is taken in signal context: the interpreter's C-level handler writes the signal
    number to a non-blocking pipe (``signal.set_wakeup_fd``) from whichever thread the kernel
    picked, and a watcher thread sets the event. (Setting a ``threading.Event`` in a Python
    handler deadlocks when a second signal interrupts the first handler while it holds the
    event's lock, and a Python handler never runs while the main thread is blocked and the
    signal went to another thread.) Any number of signals in any rhythm stop the process once.
    """
    stop = threading.Event()
    wanted = {int(sig) for sig in signals}
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def watch() -> None:
        while True:
            select.select([read_fd], [], [])
            try:
                received = os.read(read_fd, 64)
            except BlockingIOError:
                continue
            ours = [n for n in received if n in wanted]
            if ours and not stop.is_set():
                log.info("received %s; stopping", signal.Signals(ours[0]).name)
                stop.set()

    threading.Thread(target=watch, name="signal-watcher", daemon=True).start()
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for sig in signals:
        signal.signal(sig, _wake_only)
    return stop


def _wake_only(_signum: int, _frame: object) -> None:
    """A Python-level handler that does nothing: the wake-up fd carries the signal."""


def serve(spec: ServiceSpec, settings: Settings | None = None) -> int:
    """Entry point of ``kith <service> serve``: run until SIGTERM/SIGINT, then stop gracefully."""
    settings = settings or Settings.from_env()
    settings.check_secrets()
    logs.configure(spec.name, settings.log_level, settings.log_format)
    stop = wait_for_signal()
    metrics.start_metrics_server(metrics.metrics_port(settings.extra))
    tracing.configure(spec.name, settings.extra)
    running = start_service(spec, settings)
    stop.wait()
    log.info("%s shutting down", spec.name)
    running.stop()
    return 0
