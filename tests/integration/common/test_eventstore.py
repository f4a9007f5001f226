"""The event store: optimistic concurrency, stream loading, global order."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import ConcurrencyError, EventStore, NewEvent
from tests.support.ledger import DEPOSITED, ledger_codec


def deposit(account: str, amount: int) -> NewEvent:
    return NewEvent(DEPOSITED, {"account_id": account, "amount": amount, "memo": ""})


@pytest.fixture
def store(settings: Settings) -> Iterator[EventStore]:
    pool = make_pool(settings.database_url("post"), max_size=20)
    yield EventStore(pool, ledger_codec())
    pool.close()


def test_a_stream_is_loaded_back_in_version_order(store: EventStore) -> None:
    stream = uuid.uuid4()
    store.append(stream, 0, [deposit("a", 1), deposit("a", 2)])
    store.append(stream, 2, [deposit("a", 3)], metadata={"actor": "u1"})

    events = store.load(stream)

    assert [e.version for e in events] == [1, 2, 3]
    assert [store.decode(e)["amount"] for e in events] == [1, 2, 3]
    assert events[2].metadata == {"actor": "u1"}


def test_appending_at_a_stale_version_is_a_conflict(store: EventStore) -> None:
    stream = uuid.uuid4()
    store.append(stream, 0, [deposit("a", 1)])

    with pytest.raises(ConcurrencyError):
        store.append(stream, 0, [deposit("a", 99)])
    assert len(store.load(stream)) == 1


def test_a_conflict_leaves_the_callers_transaction_usable(store: EventStore) -> None:
    stream = uuid.uuid4()
    store.append(stream, 0, [deposit("a", 1)])

    with store.transaction() as conn:
        with pytest.raises(ConcurrencyError):
            store.append(stream, 0, [deposit("a", 2)], conn=conn)
        store.append(stream, 1, [deposit("a", 3)], conn=conn)

    assert [store.decode(e)["amount"] for e in store.load(stream)] == [1, 3]


def test_of_many_concurrent_appends_at_one_version_exactly_one_wins(store: EventStore) -> None:
    stream = uuid.uuid4()
    store.append(stream, 0, [deposit("a", 0)])
    writers = 12
    barrier = threading.Barrier(writers)
    outcomes: list[str] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            store.append(stream, 1, [deposit("a", i)])
            outcomes.append("won")
        except ConcurrencyError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["conflict"] * (writers - 1) + ["won"]
    assert [e.version for e in store.load(stream)] == [1, 2]


def test_read_all_returns_every_stream_in_global_order(store: EventStore) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    store.append(a, 0, [deposit("a", 1)])
    store.append(b, 0, [deposit("b", 1)])
    store.append(a, 1, [deposit("a", 2)])

    events = store.read_all()
    assert [(e.stream_id, e.version) for e in events] == [(a, 1), (b, 1), (a, 2)]
    assert store.read_all(after_position=events[1].position) == events[2:]


@pytest.mark.parametrize("count", [1, 3])
def test_an_append_lists_its_events_for_the_relay_and_wakes_it_once(
        store: EventStore, settings: Settings, count: int) -> None:

    with psycopg.connect(settings.database_url("post"), autocommit=True) as relay:
        relay.execute("LISTEN kith_events")
        recorded = store.append(uuid.uuid4(), 0, [deposit("a", n) for n in range(count)])

        with store.pool.connection() as conn:
            listed = {r[0] for r in conn.execute(
                "SELECT position FROM outbox WHERE position = ANY(%s)",
                ([e.position for e in recorded],))}
        woken = list(relay.notifies(timeout=1.0))

    assert listed == {e.position for e in recorded}
    assert len(woken) == 1  # one NOTIFY per transaction, however many events
