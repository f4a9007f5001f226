"""A projection never skips silently: a stream is applied in version order whatever partitions
its events sit in, a different event at a known version or a stored offset past the end of the
log holds that partition with a clear reason, one poisoned partition leaves the others
flowing, and a database restart is survived inside the runner."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence

import psycopg
from confluent_kafka import Producer

from kith.common.codec import MAGIC
from kith.common.config import Settings
from kith.common.kafka import event_headers
from kith.common.metrics import PROJECTION_HELD
from kith.common.projection import Event, ProjectionRunner
from tests.support.ledger import DEPOSITED, LedgerProjection, ledger_codec, read_balances

CODEC = ledger_codec()


def deposit(stream: uuid.UUID, version: int, amount: int, partition: int,
            event_id: uuid.UUID | None = None) -> tuple:
    value = CODEC.encode(DEPOSITED, {"account_id": str(stream), "amount": amount})
    return (str(stream).encode(), value, partition,
            event_headers(DEPOSITED, event_id or uuid.uuid4(), version, 0, {}))


def produce(settings: Settings, records: Sequence[tuple]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 3})
    for key, value, partition, headers in records:
        producer.produce(settings.topic("post"), key=key, value=value, partition=partition,
                         headers=headers)
    assert producer.flush(10) == 0


def ledger_runner(settings: Settings, projection: LedgerProjection | None = None,
                  batch_size: int = 500) -> ProjectionRunner:
    dsn = settings.database_url("post")
    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    return ProjectionRunner(projection or LedgerProjection([settings.topic("post")]), dsn,
                            settings.kafka_bootstrap, CODEC, batch_size=batch_size,
                            group_id=f"{settings.topic_prefix}ledger-{uuid.uuid4().hex[:6]}")


def step_until(runner: ProjectionRunner, done: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached"
        runner.step()


def held(runner: ProjectionRunner) -> dict[int, str]:
    return {p: h.reason for (_, p), h in runner.holds.items() if h.active}


def test_a_rebuild_applies_each_stream_in_version_order_across_partitions(
        settings: Settings) -> None:
    # The partition count grew: the stream's later events landed in partition 0 (read first),
    # its earlier ones in partition 1.
    stream = uuid.uuid4()
    produce(settings, [deposit(stream, 3, 100, 0), deposit(stream, 4, 1000, 0)])
    produce(settings, [deposit(stream, 1, 1, 1), deposit(stream, 2, 10, 1)])
    runner = ledger_runner(settings)
    dsn = settings.database_url("post")
    runner.open()
    try:
        step_until(runner, lambda: read_balances(dsn).get(str(stream), (0, 0))[1] == 4)
    finally:
        runner.close()
    assert read_balances(dsn) == {str(stream): (1111, 4)}


def test_a_different_event_at_an_applied_version_holds_the_partition(settings: Settings
                                                                     ) -> None:
    stream, other = uuid.uuid4(), uuid.uuid4()
    produce(settings, [deposit(stream, 1, 5, 0), deposit(stream, 1, 7, 0),  # re-issued v1
                       deposit(stream, 2, 9, 0), deposit(other, 1, 3, 1)])
    runner = ledger_runner(settings)
    dsn = settings.database_url("post")
    runner.open()
    try:
        step_until(runner, lambda: held(runner) == {0: "conflict"}
                   and str(other) in read_balances(dsn))
        for _ in range(20):
            runner.step()
        hold = runner.holds[(settings.topic("post"), 0)]
        assert hold.offset == 1 and str(stream) in hold.detail
        assert PROJECTION_HELD.labels("ledger", settings.topic("post"), "0", "conflict"
                                      )._value.get() == 1
    finally:
        runner.close()
    assert read_balances(dsn) == {str(stream): (5, 1), str(other): (3, 1)}  # v2 not past it


def test_a_stored_offset_past_the_end_of_the_log_holds_instead_of_fencing_new_records(
        settings: Settings) -> None:
    # The topic was recreated: the projection had read 50 records of partition 0, the new
    # log holds 2 — which the old fence would have dropped as "already applied".
    a, b = uuid.uuid4(), uuid.uuid4()
    produce(settings, [deposit(a, 1, 5, 0), deposit(a, 2, 5, 0), deposit(b, 1, 8, 1)])
    runner = ledger_runner(settings)
    dsn = settings.database_url("post")
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO projection_offsets VALUES ('ledger', %s, 0, 50)",
                     (settings.topic("post"),))
    runner.open()
    try:
        step_until(runner, lambda: str(b) in read_balances(dsn))
        for _ in range(20):
            runner.step()
        assert held(runner) == {0: "offset_beyond_log"}
        assert runner.holds[(settings.topic("post"), 0)].reason == "offset_beyond_log"
    finally:
        runner.close()
    assert read_balances(dsn) == {str(b): (8, 1)}


class Fragile(LedgerProjection):
    """Fails on every event of one account, as a bug in ``apply`` would."""

    def __init__(self, topics: Sequence[str], poison: str) -> None:
        super().__init__(topics)
        self.poison = poison

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        if any(e.data["account_id"] == self.poison for e in events):
            raise ValueError("cannot apply this one")
        super().apply(conn, events)


def test_a_poisoned_or_unknown_record_holds_only_its_partition(settings: Settings) -> None:
    bad, future, ok0, ok2, ok3 = (uuid.uuid4() for _ in range(5))
    unknown = MAGIC + b"\x01" * 8 + b"\x00"
    produce(settings, [
        deposit(bad, 1, 1, 0), deposit(ok0, 1, 1, 0),
        (str(future).encode(), unknown, 1, event_headers("kith.ledger.Future", uuid.uuid4(),
                                                          1, 0, {})),
        deposit(ok2, 1, 2, 2), deposit(ok3, 1, 3, 3)])
    runner = ledger_runner(settings, Fragile([settings.topic("post")], str(bad)))
    dsn = settings.database_url("post")
    runner.open()
    try:
        step_until(runner, lambda: {str(ok2), str(ok3)} <= set(read_balances(dsn))
                   and held(runner) == {0: "poison", 1: "unknown_schema"})
        produce(settings, [deposit(ok2, 2, 20, 2)])  # the healthy partitions keep flowing
        step_until(runner, lambda: read_balances(dsn)[str(ok2)] == (22, 2))
    finally:
        runner.close()
    with psycopg.connect(dsn) as conn:
        offsets = dict(conn.execute("SELECT partition, next_offset FROM projection_offsets"
                                    " WHERE partition IN (0, 1)").fetchall())
    assert offsets == {0: 0, 1: 0}  # nothing moved past: they apply once repaired
    assert str(ok0) not in read_balances(dsn)


def test_the_runner_survives_its_database_connections_being_cut(settings: Settings) -> None:
    streams = [uuid.uuid4() for _ in range(8)]
    produce(settings, [deposit(s, 1, 1, i % 4) for i, s in enumerate(streams)])
    runner = ledger_runner(settings)
    dsn = settings.database_url("post")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(read_balances(dsn)) < 8:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with psycopg.connect(settings.pg_dsn or "", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s AND pid <> pg_backend_pid()",
                          (f"{settings.db_prefix}_post",))
        produce(settings, [deposit(s, 2, 10, i % 4) for i, s in enumerate(streams)])
        deadline = time.monotonic() + 30
        while sum(n for _, n in read_balances(dsn).values()) < 16:
            assert thread.is_alive(), "the runner gave up"
            assert time.monotonic() < deadline, read_balances(dsn)
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert runner.transient_failures >= 1
    assert read_balances(dsn) == {str(s): (11, 2) for s in streams}
