"""The moving parts of the pipeline scenarios: a steady write load that rides out outages,
and the relay and projection worker as processes of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import psycopg
from psycopg_pool import PoolTimeout

from kith.common.db import make_pool
from kith.common.eventstore import EventStore, NewEvent
from tests.support.ledger import DEPOSITED, ledger_codec
from tests.support.processes import REPO


class Load(threading.Thread):
    """One deposit into a new account every 20 ms until stopped, riding out the outages;
    an append that returned is acknowledged (one whose outcome is unknown is not)."""

    def __init__(self, dsn: str) -> None:
        super().__init__(name="load", daemon=True)
        self.dsn, self.stop, self.acknowledged = dsn, threading.Event(), set[str]()

    def run(self) -> None:
        pool = make_pool(self.dsn, max_size=2)
        store = EventStore(pool, ledger_codec())
        try:
            while not self.stop.wait(0.02):
                account = uuid.uuid4()
                try:
                    store.append(account, 0, [NewEvent(
                        DEPOSITED, {"account_id": str(account), "amount": 7})])
                except (psycopg.Error, OSError, PoolTimeout):
                    continue  # the database is away (or the pool reconnecting): not acknowledged
                self.acknowledged.add(str(account))
        finally:
            pool.close()


def spawn(module: str, dsn: str, bootstrap: str, topic: str,
          metrics_port: int = 0) -> subprocess.Popen[bytes]:
    """``python -m module dsn bootstrap topic`` (a relay or ledger worker of tests.support),
    with ``/metrics`` on ``metrics_port`` if one is given."""
    return subprocess.Popen(
        [sys.executable, "-m", module, dsn, bootstrap, topic], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "KITH_METRICS_PORT": str(metrics_port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def outbox(dsn: str) -> int:
    """Events recorded and not yet published."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM outbox").fetchone()
    return int(row[0]) if row else 0
