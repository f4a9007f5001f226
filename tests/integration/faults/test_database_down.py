"""Fault: PostgreSQL stopped the hard way (``immediate``) and restarted, three times, with a
relay, a projection worker and a steady stream of writes running throughout.

Each time, every process resumes by itself: a write made after the database is back
flows through the relay, Kafka and the worker into the read model within 20 s. At the
end every acknowledged write is in the event store, every stored event reached the topic
and the read model equals the oracle: 0 lost, 0 duplicated.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from kith.common.config import DB_SESSION_DEFAULTS, Settings, with_database, with_session_limits
from kith.common.db import migrate_service
from kith.common.eventstore import EventStore, NewEvent
from kith.common.infra.postgres import ensure_database
from kith_dev.infra.postgres import EmbeddedPostgres
from kith_dev.infra.processes import free_port
from tests.integration.faults.oracle import ledger_oracle
from tests.integration.faults.pipeline import Load, spawn
from tests.support.kafka import read_topic
from tests.support.ledger import DEPOSITED, LedgerProjection, ledger_codec, read_balances

RESTARTS = 3
RESUME_BOUND_S = 20.0


@contextlib.contextmanager
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own (the session's is shared), stopped afterwards."""
    home = Path(tempfile.mkdtemp(prefix="kith-fault-pg-"))
    home.chmod(0o755)  # the server may run as another user (embedded_postgres, under root)
    server = EmbeddedPostgres(home / "data", free_port(), die_with_parent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def deposit(dsn: str) -> str:
    """A marker write, retried until the database takes it."""
    account = uuid.uuid4()
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                store = EventStore(_single(conn), ledger_codec())  # type: ignore[arg-type]
                store.append(account, 0, [NewEvent(
                    DEPOSITED, {"account_id": str(account), "amount": 1})], conn=conn)
            return str(account)
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the database did not take a write"
            time.sleep(0.2)


class _single:
    """An EventStore pool of one given connection (the marker write joins it)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        yield self.conn


def test_postgres_stopped_hard_three_times_under_load_loses_and_repeats_nothing(
        settings: Settings) -> None:
    bootstrap, topic = settings.require_kafka(), settings.topic("post")
    with own_postgres() as server:
        ensure_database(server.dsn, "ledger")
        dsn = with_session_limits(with_database(server.dsn, "ledger"), DB_SESSION_DEFAULTS)
        migrate_service(dsn, "kith.common")
        with psycopg.connect(dsn) as conn:
            LedgerProjection.create_tables(conn)
        relay = spawn("tests.support.relay_worker", dsn, bootstrap, topic)
        worker = spawn("tests.support.ledger_worker", dsn, bootstrap, topic)
        load = Load(dsn)
        load.start()
        resumed: list[float] = []
        try:
            for _ in range(RESTARTS):
                time.sleep(3)  # the pipeline flows
                assert server._proc is not None
                server._proc.send_signal(signal.SIGQUIT)  # pg_ctl stop -m immediate
                server._proc.wait(30)
                time.sleep(2)
                server.start()
                back = time.monotonic()
                marker = deposit(dsn)
                while marker not in _balances(dsn):
                    assert time.monotonic() - back < RESUME_BOUND_S, (
                        "the relay or the worker did not resume within "
                        f"{RESUME_BOUND_S:.0f} s of the database coming back")
                    time.sleep(0.2)
                resumed.append(time.monotonic() - back)

            load.stop.set()
            load.join(30)
            expected = ledger_oracle(dsn, ledger_codec())
            assert load.acknowledged <= set(expected)  # every acknowledged write is stored
            deadline = time.monotonic() + 60
            while _balances(dsn) != expected:
                assert time.monotonic() < deadline, "the read model did not converge"
                time.sleep(0.2)
            records = read_topic(bootstrap, topic, len(expected), timeout_s=60)
            assert len({r.event_id for r in records}) == len(expected)  # each on the topic
            time.sleep(1.0)
            assert _balances(dsn) == expected  # and applied once
            print(f"{len(load.acknowledged)} writes acknowledged across {RESTARTS} hard stops; "
                  "relay and worker resumed "
                  + ", ".join(f"{s:.1f}" for s in resumed)
                  + " s after PostgreSQL accepted connections again")
        finally:
            load.stop.set()
            for process in (relay, worker):
                process.send_signal(signal.SIGTERM)
                process.wait(30)


def _balances(dsn: str) -> dict[str, tuple[int, int]]:
    try:
        return read_balances(dsn)
    except psycopg.OperationalError:
        return {}
