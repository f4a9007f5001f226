"""Fixtures of the replay tests: a ledger on the real event store and broker."""

from __future__ import annotations

from collections.abc import Iterator

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


