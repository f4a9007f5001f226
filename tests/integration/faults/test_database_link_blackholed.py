"""Fault: the publishing relay's database link blackholed for 60 s under a steady load.

Two relays publish one service's outbox, each through its own link (a TCP proxy) to
PostgreSQL; one leads. Its link goes silent — nothing arrives, nothing is refused, the
process cannot tell — while writes keep coming. PostgreSQL ends the silent leader's
session (``idle_session_timeout``), which frees leadership, and the standby takes over
within 15 s. When the link heals, the old leader learns that its session is gone and
stands by; nothing hangs: every process stops on SIGTERM within seconds. Every stored event
reached the topic and the read model equals the oracle (each applied once).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg

from kith.common.config import Settings
from tests.integration.faults.oracle import ledger_oracle
from tests.integration.faults.pipeline import Load
from tests.support.kafka import read_topic
from tests.support.ledger import LedgerProjection, ledger_codec, read_balances
from tests.support.processes import REPO
from tests.support.tcp_proxy import TcpProxy

BLACKHOLE_S = 60.0
TAKEOVER_BOUND_S = 15.0
EXIT_BOUND_S = 10.0


def through(dsn: str, proxy: TcpProxy) -> str:
    """``dsn`` reaching its server through ``proxy``."""
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def spawn(module: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def next_leader(relays: list[subprocess.Popen[str]], timeout: float) -> subprocess.Popen[str]:
    """The relay that says it leads next (within ``timeout``)."""
    streams = {r.stdout: r for r in relays if r.stdout is not None}
    ready, _, _ = select.select(list(streams), [], [], timeout)
    assert ready, f"no relay took the lead within {timeout:.0f} s"
    assert ready[0].readline().strip() == "leading"
    return streams[ready[0]]


def test_a_blackholed_leader_link_hands_over_within_fifteen_seconds_and_nothing_hangs(
        settings: Settings) -> None:
    bootstrap, topic, dsn = settings.require_kafka(), settings.topic("post"), \
        settings.database_url("post")
    host, port = urlsplit(dsn).hostname or "127.0.0.1", urlsplit(dsn).port or 5432
    with psycopg.connect(dsn) as conn:
        LedgerProjection.create_tables(conn)
    links = {name: TcpProxy(host, port) for name in ("a", "b")}
    relays = {name: spawn("tests.support.relay_worker", through(dsn, link), bootstrap, topic)
              for name, link in links.items()}
    worker = spawn("tests.support.ledger_worker", dsn, bootstrap, topic)
    load = Load(dsn)
    processes = [*relays.values(), worker]
    try:
        leader = next_leader(list(relays.values()), timeout=30)
        load.start()
        time.sleep(3)  # the pipeline flows
        leader_link = next(links[n] for n, r in relays.items() if r is leader)
        leader_link.blackhole()
        cut = time.monotonic()
        standby = next_leader([r for r in relays.values() if r is not leader],
                              timeout=TAKEOVER_BOUND_S)
        took_over = time.monotonic() - cut
        time.sleep(max(0.0, BLACKHOLE_S - (time.monotonic() - cut)))
        leader_link.heal()
        healed = time.monotonic()
        time.sleep(2)  # writes keep coming after the heal
        load.stop.set()
        load.join(30)

        expected = ledger_oracle(dsn, ledger_codec())
        assert load.acknowledged <= set(expected)  # every acknowledged write is stored
        deadline = time.monotonic() + 60
        while read_balances(dsn) != expected:
            assert time.monotonic() < deadline, "the read model did not converge"
            time.sleep(0.2)
        converged = time.monotonic() - healed
        records = read_topic(bootstrap, topic, len(expected), timeout_s=60)
        published = {r.event_id for r in records}
        assert len(published) == len(expected)  # every stored event reached the topic
        time.sleep(1.0)
        assert read_balances(dsn) == expected  # and was applied once

        # Nothing hangs: the old leader noticed its lost session and stands by; all stop.
        assert leader.poll() is None and standby.poll() is None
        stopping = time.monotonic()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(EXIT_BOUND_S - (time.monotonic() - stopping))
        print(f"{len(load.acknowledged)} writes acknowledged; standby took over "
              f"{took_over:.1f} s after the leader's link went silent (blackholed "
              f"{BLACKHOLE_S:.0f} s); read model converged {converged:.1f} s after the heal; "
              f"{len(records) - len(published)} duplicate record(s) on the topic; all stopped "
              f"{time.monotonic() - stopping:.1f} s after SIGTERM")
        assert took_over <= TAKEOVER_BOUND_S
    finally:
        load.stop.set()
        for link in links.values():
            link.close()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
