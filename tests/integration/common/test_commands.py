"""The command runner over a real event store: it decides again after a concurrent append,
gives up with ``version_conflict`` once its attempts are spent, and performs an identified
command once whatever how often it is repeated."""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kith.common.commands import (
    Command,
    CommandRunner,
    ResultCodec,
    RetryPolicy,
    purge_commands,
)
from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.errors import Conflict
from kith.common.eventstore import EventStore, NewEvent
from kith.common.logs import command_id, request_id
from tests.support.ledger import DEPOSITED, ledger_codec


def deposit(amount: int) -> NewEvent:
    return NewEvent(DEPOSITED, {"account_id": "a", "amount": amount, "memo": ""})


@pytest.fixture
def store(settings: Settings) -> Iterator[EventStore]:
    pool = make_pool(settings.database_url("post"), max_size=10)
    yield EventStore(pool, ledger_codec())
    pool.close()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_a_concurrent_append_makes_the_command_decide_again_after_a_jittered_pause(
        store: EventStore) -> None:
    stream = uuid.uuid4()
    store.append(stream, 0, [deposit(1)])
    sleeps = Sleeps()
    runner = CommandRunner(store, RetryPolicy(attempts=5, base_delay_s=0.01), sleep=sleeps)
    seen_versions = []

    def add_two(command: Command) -> int:
        version = len(store.load(stream, command.conn))
        seen_versions.append(version)
        if len(seen_versions) == 1:  # somebody else records between our load and our append
            store.append(stream, version, [deposit(5)])
        command.append(stream, version, [deposit(2)])
        return version + 1

    assert runner.run("add_two", add_two, actor_id="u-1") == 3
    assert seen_versions == [1, 2]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.01
    assert [store.decode(e)["amount"] for e in store.load(stream)] == [1, 5, 2]


def test_a_command_that_keeps_losing_gives_up_with_version_conflict(store: EventStore) -> None:
    stream = uuid.uuid4()
    sleeps = Sleeps()
    runner = CommandRunner(store, RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.02),
                           sleep=sleeps)

    def always_late(command: Command) -> None:
        version = len(store.load(stream, command.conn))
        store.append(stream, version, [deposit(9)])  # always first
        command.append(stream, version, [deposit(1)])

    with pytest.raises(Conflict) as refused:
        runner.run("always_late", always_late, actor_id="u-1")

    assert refused.value.code == "version_conflict"
    assert len(sleeps) == 3 and all(0 <= s <= 0.02 for s in sleeps)
    assert {store.decode(e)["amount"] for e in store.load(stream)} == {9}


def test_only_the_unique_violations_a_service_names_are_retried(store: EventStore) -> None:
    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ledger_names (name text"
                     " CONSTRAINT ledger_names_pkey PRIMARY KEY)")
        conn.execute("INSERT INTO ledger_names VALUES ('taken') ON CONFLICT DO NOTHING")
    attempts: list[str] = []

    def name_it(wanted: list[str]) -> Any:
        def handler(command: Command) -> str:
            attempts.append(wanted[0])
            command.conn.execute("INSERT INTO ledger_names VALUES (%s)", (wanted.pop(0),))
            return "named"
        return handler

    named = CommandRunner(store, retry_on=["ledger_names_pkey"], sleep=lambda _: None)
    assert named.run("name", name_it(["taken", f"n-{uuid.uuid4()}"]), actor_id="u") == "named"
    assert attempts[0] == "taken" and len(attempts) == 2

    unnamed = CommandRunner(store, sleep=lambda _: None)
    with pytest.raises(psycopg.errors.UniqueViolation):
        unnamed.run("name", name_it(["taken"]), actor_id="u")


def test_recorded_events_carry_the_commands_metadata(store: EventStore) -> None:
    stream = uuid.uuid4()
    token = request_id.set("req-42")
    try:
        CommandRunner(store).run(
            "deposit", lambda c: c.append(stream, 0, [deposit(1)]), actor_id="u-7",
            reason="test")
    finally:
        request_id.reset(token)

    assert store.load(stream)[0].metadata == {"actor_id": "u-7", "command": "deposit",
                                              "correlation_id": "req-42", "reason": "test"}


def open_account(store: EventStore, performed: list[uuid.UUID]) -> Any:
    def handler(command: Command) -> uuid.UUID:
        stream = uuid.uuid4()
        command.append(stream, 0, [deposit(100)])
        performed.append(stream)
        return stream
    return handler


ACCOUNT = ResultCodec[uuid.UUID](dump=lambda stream: {"stream": str(stream)},
                                 load=lambda conn, kept: uuid.UUID(kept["stream"]))


def test_a_repeated_command_id_returns_the_first_result_and_records_nothing_more(
        store: EventStore) -> None:
    runner, performed = CommandRunner(store), []
    cid = str(uuid.uuid4())
    token = command_id.set(cid)
    try:
        first = runner.run("open", open_account(store, performed), actor_id="u-1",
                           result=ACCOUNT)
        again = runner.run("open", open_account(store, performed), actor_id="u-1",
                           result=ACCOUNT)
        # The same id from somebody else is not their command.
        other = runner.run("open", open_account(store, performed), actor_id="u-2",
                           result=ACCOUNT)
    finally:
        command_id.reset(token)
    fresh = runner.run("open", open_account(store, performed), actor_id="u-1", result=ACCOUNT)

    assert again == first and other != first and fresh not in (first, other)
    assert performed == [first, other, fresh]
    assert store.load(first)[0].metadata["command_id"] == cid


def test_concurrent_repeats_of_one_command_id_perform_it_once(store: EventStore) -> None:
    runner, performed, results = CommandRunner(store), [], []
    cid = str(uuid.uuid4())
    barrier = threading.Barrier(4)

    def repeat() -> None:
        command_id.set(cid)
        barrier.wait()
        results.append(runner.run("open", open_account(store, performed), actor_id="u-1",
                                  result=ACCOUNT))

    threads = [threading.Thread(target=repeat) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 4 and len(set(results)) == 1
    kept = [s for s in performed if store.load(s)]  # losers' appends were rolled back
    assert kept == [results[0]]


def test_command_records_are_forgotten_once_the_gateway_forgets_their_key(
        store: EventStore) -> None:
    runner, performed = CommandRunner(store), []
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    for cid in (old, recent):
        token = command_id.set(cid)
        try:
            runner.run("open", open_account(store, performed), actor_id="u-1", result=ACCOUNT)
        finally:
            command_id.reset(token)
    with store.transaction() as conn:
        conn.execute("UPDATE commands SET recorded_at = now() - interval '25 hours'"
                     " WHERE command_id = %s", (old,))
        assert purge_commands(conn) >= 1
        kept = {str(r[0]) for r in conn.execute("SELECT command_id FROM commands")}

    assert recent in kept and old not in kept


def test_a_commands_append_takes_no_savepoint_of_its_own(store: EventStore) -> None:
    """The attempt's transaction is what a conflict rolls back: an extra savepoint around
    the append would cost two round trips per command for nothing."""
    runner = CommandRunner(store, sleep=lambda _: None)

    def record(command: Command) -> str:
        with tempfile.TemporaryFile() as traced:
            command.conn.pgconn.trace(traced.fileno())
            command.append(uuid.uuid4(), 0, [deposit(1)])
            command.conn.pgconn.untrace()
            traced.seek(0)
            return traced.read().decode()

    sent = runner.run("record", record, actor_id="u-1")
    assert "INSERT INTO events" in sent and "SAVEPOINT" not in sent.upper()


def test_a_conflict_inside_a_callers_transaction_undoes_only_that_attempt(
        store: EventStore) -> None:
    stream, marker = uuid.uuid4(), uuid.uuid4()
    store.append(stream, 0, [deposit(1)])
    runner = CommandRunner(store, RetryPolicy(attempts=3), sleep=lambda _: None)
    tries = []

    def add_two(command: Command) -> None:
        version = len(store.load(stream, command.conn))
        tries.append(version)
        if len(tries) == 1:  # somebody else records between our load and our append
            store.append(stream, version, [deposit(5)])
        command.append(stream, version, [deposit(2)])

    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ledger_marks (id uuid PRIMARY KEY)")
        conn.execute("INSERT INTO ledger_marks VALUES (%s)", (marker,))
        runner.run("add_two", add_two, actor_id="u-1", conn=conn)
        conn.execute("SELECT 1")  # the caller's transaction is still usable
    assert tries == [1, 2]
    assert [store.decode(e)["amount"] for e in store.load(stream)] == [1, 5, 2]
    with store.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ledger_marks WHERE id = %s",
                            (marker,)).fetchone()[0] == 1
