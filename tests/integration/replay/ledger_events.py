"""Ledger events appended to a real event store and relayed to the real broker."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from kith.common import crypto
from kith.common.config import Settings
from kith.common.eventstore import EventStore, NewEvent
from kith.common.relay import OutboxRelay
from tests.support.ledger import DEPOSITED

WITHDRAWN = "kith.ledger.Withdrawn"


@dataclass
class Ledger:
    """Appends ledger events to the post database and publishes them to the post topic."""

    settings: Settings
    store: EventStore
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    versions: Counter[uuid.UUID] = field(default_factory=Counter)
    balances: Counter[str] = field(default_factory=Counter)
    event_ids: dict[uuid.UUID, str] = field(default_factory=dict)  # event id → type
    secrets: list[str] = field(default_factory=list)  # plaintexts that were encrypted

    @property
    def topic(self) -> str:
        return self.settings.topic("post")

    def append(self, count: int, accounts: int = 20, encrypt_every: int = 0) -> None:
        """``count`` events over ``accounts`` accounts; every ``encrypt_every``-th deposit's
        memo is personal data, encrypted under a key that is then thrown away (shredded)."""
        ids = [uuid.UUID(int=self.rng.getrandbits(128)) for _ in range(accounts)]
        for i in range(count):
            account = self.rng.choice(ids)
            amount = self.rng.randint(1, 100)
            if i % 3 == 2:
                event = NewEvent(WITHDRAWN, {"account_id": str(account), "amount": amount})
                self.balances[str(account)] -= amount
            else:
                memo = f"memo {i}"
                if encrypt_every and i % encrypt_every == 0:
                    secret = f"secret-{uuid.uuid4().hex}"
                    self.secrets.append(secret)
                    memo = crypto.encrypt(crypto.new_key(), str(account), secret)
                event = NewEvent(DEPOSITED, {"account_id": str(account), "amount": amount,
                                             "memo": memo})
                self.balances[str(account)] += amount
            self.store.append(account, self.versions[account], [event])
            self.versions[account] += 1
            self.event_ids[event.event_id] = event.type

    def expected(self) -> dict[str, tuple[int, int]]:
        """What a ledger projection must hold: balance and event count per account."""
        return {str(a): (self.balances[str(a)], n) for a, n in self.versions.items() if n}

    def publish(self) -> None:
        dsn = self.settings.database_url("post")
        relay = OutboxRelay(dsn, self.settings.require_kafka(), self.topic, batch_size=500)
        with psycopg.connect(dsn, autocommit=True) as conn:
            while relay.publish_batch(conn):
                pass
