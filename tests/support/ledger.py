"""A tiny test domain (accounts with deposits) on the real event store and Kafka.

Its schemas live in ``tests/schemas/ledger``. The ``LedgerProjection`` keeps
balances and a per-account count of applied events, so a lost event and an
event applied twice both show up in the read model. ``AccountErased`` (the holder
deleted the account) takes the account's row out: nothing of it stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

import psycopg

from kith.common.codec import AvroCodec, SchemaRegistry
from kith.common.projection import Event

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
DEPOSITED = "kith.ledger.Deposited"
ERASED = "kith.ledger.AccountErased"


def ledger_codec() -> AvroCodec:
    return AvroCodec(SchemaRegistry(SCHEMAS))


class LedgerProjection:
    name = "ledger"

    def __init__(self, topics: Sequence[str]) -> None:
        self.topics = list(topics)

    @staticmethod
    def create_tables(conn: psycopg.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS ledger_balances ("
                     "account_id text PRIMARY KEY, balance bigint NOT NULL, applied int NOT NULL)")

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        with conn.cursor() as cur:
            for erased, run in groupby(events, key=lambda e: e.type == ERASED):
                if erased:  # in delivery order: an erasure follows the account's deposits
                    cur.executemany("DELETE FROM ledger_balances WHERE account_id = %s",
                                    [(e.data["account_id"],) for e in run])
                    continue
                cur.executemany(
                    "INSERT INTO ledger_balances (account_id, balance, applied)"
                    " VALUES (%s, %s, 1) ON CONFLICT (account_id) DO UPDATE SET"
                    " balance = ledger_balances.balance + EXCLUDED.balance,"
                    " applied = ledger_balances.applied + 1",
                    [(e.data["account_id"],
                      e.data["amount"] if e.type == DEPOSITED else -e.data["amount"])
                     for e in run],
                )

    def reset(self, conn: psycopg.Connection) -> None:
        conn.execute("TRUNCATE ledger_balances")


def read_balances(dsn: str) -> dict[str, tuple[int, int]]:
    with psycopg.connect(dsn) as conn:
        return {a: (b, n) for a, b, n in conn.execute(
            "SELECT account_id, balance, applied FROM ledger_balances")}
