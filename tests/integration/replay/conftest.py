"""Fixtures of the replay tests: a ledger on the real event store and broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.eventstore import EventStore
from tests.integration.replay.ledger_events import Ledger
from tests.support.ledger import ledger_codec


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    pool = make_pool(settings.database_url("post"), max_size=2)
    yield Ledger(settings, EventStore(pool, ledger_codec()))
    pool.close()


@pytest.fixture
def wait_until() -> Callable[[Callable[[], bool], float], None]:
    def wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.05)

    return wait
