"""A projection process for crash tests (run with ``python -m tests.support.ledger_worker``).

Applies the ledger projection with small batches and a little work per batch,
so that a SIGKILL usually lands in the middle of one.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from kith.common.codec import AvroCodec, SchemaRegistry
from kith.common.projection import Event, ProjectionRunner
from tests.support.ledger import LedgerProjection, ledger_codec


class SlowLedger(LedgerProjection):
    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        super().apply(conn, events)
        time.sleep(0.02)


def main(dsn: str, bootstrap: str, topic: str, instance: str = "worker-1",
         schemas: str | None = None) -> None:
    """Consume ``topic`` as group ``<topic>.ledger`` (instance ``worker-1``) until SIGTERM;
    ``schemas`` replaces the ledger schemas directory (a schema that "ships" later)."""
    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    codec = AvroCodec(SchemaRegistry(Path(schemas))) if schemas else ledger_codec()
    ProjectionRunner(SlowLedger([topic]), dsn, bootstrap, codec, batch_size=25,
                     group_id=f"{topic}.ledger", instance_id=instance).run(stop)


if __name__ == "__main__":
    main(*sys.argv[1:6])
