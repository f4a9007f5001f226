"""``kith replay rebuild``: a fresh copy of a projection swapped in while the live one runs."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Sequence

import psycopg
import pytest

from kith.cli.replay import ReplayError, rebuild_projection
from kith.common.projection import Event, ProjectionRunner
from tests.integration.replay.ledger_events import Ledger
from tests.support.ledger import LedgerProjection, ledger_codec, read_balances
from tests.support.waiting import eventually


class Balances(LedgerProjection):
    """The ledger projection, rebuildable, under a name of its own: consumer groups are named
    after projections and shared by every test on the broker."""

    tables = ("ledger_balances",)

    def __init__(self, topics: list[str]) -> None:
        super().__init__(topics)
        self.name = f"ledger_{uuid.uuid4().hex[:8]}"


class InterruptedAfter(Balances):
    """Sets ``stop`` (as SIGINT would) once it has applied ``batches`` batches."""

    def __init__(self, topics: list[str], batches: int, stop: threading.Event) -> None:
        super().__init__(topics)
        self.left = batches
        self.stop = stop

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        super().apply(conn, events)
        self.left -= 1
        if self.left <= 0:
            self.stop.set()


def schemas(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}


def test_a_rebuilt_copy_replaces_the_live_projection_while_it_keeps_running(
    ledger: Ledger,
) -> None:
    dsn = ledger.settings.database_url("post")
    projection = Balances([ledger.topic])
    with psycopg.connect(dsn, autocommit=True) as conn:
        projection.create_tables(conn)
    live = ProjectionRunner(projection, dsn, ledger.settings.require_kafka(), ledger_codec(),
                            batch_size=50)
    stop = threading.Event()
    thread = threading.Thread(target=live.run, args=(stop,), daemon=True)
    thread.start()
    writer_stop = threading.Event()

    def keep_writing() -> None:
        while not writer_stop.is_set():
            ledger.append(10)
            ledger.publish()

    try:
        ledger.append(300)
        ledger.publish()
        eventually(lambda: sum(n for _, n in read_balances(dsn).values()), lambda n: n == 300,
                   timeout=30)
        # A bug once corrupted the read model: the rebuild must not carry it over.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE ledger_balances SET balance = balance + 1000000")
        writer = threading.Thread(target=keep_writing, daemon=True)
        writer.start()

        result = rebuild_projection(projection, dsn, ledger.settings.require_kafka(),
                                    ledger_codec(), batch_size=40, progress_stream=io.StringIO())

        writer_stop.set()
        writer.join(30)
        ledger.append(20)  # after the swap, the live runner goes on with the new tables
        ledger.publish()
        total = sum(ledger.versions.values())
        eventually(lambda: sum(n for _, n in read_balances(dsn).values()),
                   lambda n: n == total, timeout=30)
    finally:
        writer_stop.set()
        stop.set()
        thread.join(30)

    assert result.applied >= 300
    assert read_balances(dsn) == ledger.expected()
    assert not {f"rebuild_{projection.name}", f"retired_{projection.name}"} & schemas(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM projection_offsets WHERE projection = %s",
                            (f"{projection.name}__rebuild",)).fetchone()[0] == 0


def test_an_interrupted_rebuild_resumes_and_keeps_the_old_tables_on_request(
    ledger: Ledger,
) -> None:
    dsn = ledger.settings.database_url("post")
    projection = Balances([ledger.topic])
    with psycopg.connect(dsn, autocommit=True) as conn:
        projection.create_tables(conn)
    ledger.append(200)
    ledger.publish()
    bootstrap = ledger.settings.require_kafka()
    stop = threading.Event()
    interrupted = InterruptedAfter([ledger.topic], batches=2, stop=stop)
    interrupted.name = projection.name
    with pytest.raises(ReplayError, match="interrupted"):
        rebuild_projection(interrupted, dsn, bootstrap, ledger_codec(), batch_size=30,
                           stop=stop, progress_stream=io.StringIO())
    assert f"rebuild_{projection.name}" in schemas(dsn) and read_balances(dsn) == {}

    result = rebuild_projection(projection, dsn, bootstrap, ledger_codec(), batch_size=30,
                                keep_old=True, progress_stream=io.StringIO())

    assert 0 < result.applied <= 200 - 2
    assert read_balances(dsn) == ledger.expected()
    with psycopg.connect(dsn) as conn:
        assert conn.execute(f"SELECT count(*) FROM retired_{projection.name}.ledger_balances"
                            ).fetchone()[0] == 0


def test_projections_whose_tables_cannot_be_copied_are_refused(ledger: Ledger) -> None:
    dsn, bootstrap = ledger.settings.database_url("post"), ledger.settings.require_kafka()
    with pytest.raises(ReplayError, match="does not name its tables"):
        rebuild_projection(LedgerProjection([ledger.topic]), dsn, bootstrap, ledger_codec())
    with pytest.raises(ReplayError, match="no table ledger_balances"):
        rebuild_projection(Balances([ledger.topic]), dsn, bootstrap, ledger_codec())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger_balances (id serial, account_id text)")
    with pytest.raises(ReplayError, match=r"ledger_balances\.id: serial columns"):
        rebuild_projection(Balances([ledger.topic]), dsn, bootstrap, ledger_codec())
    assert not {s for s in schemas(dsn) if s.startswith("rebuild_")}
