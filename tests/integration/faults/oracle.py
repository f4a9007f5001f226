"""The oracle of the fault scenarios: what the read model must hold, computed from the event
store (the truth), and what actually reached the topic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import psycopg

from kith.common.codec import AvroCodec
from tests.support.ledger import DEPOSITED


def ledger_oracle(dsn: str, codec: AvroCodec,
                  extra: Sequence[tuple[str, str, int]] = ()) -> dict[str, tuple[int, int]]:
    """Balance and event count per account from every stored event (plus ``extra`` events
    ``(account, type, amount)`` that entered the log another way)."""
    balances: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT payload FROM events ORDER BY position").fetchall()
    stored = [(data["account_id"], event_type, data["amount"])
              for event_type, data in (codec.decode(bytes(p)) for (p,) in rows)]
    for account, event_type, amount in [*stored, *extra]:
        balances[account] += amount if event_type == DEPOSITED else -amount
        counts[account] += 1
    return {a: (balances[a], counts[a]) for a in counts}
