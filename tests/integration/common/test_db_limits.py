"""Every database connection carries session limits and TCP keepalives (``KITH_DB_*``): a
runaway statement, a lock wait or a forgotten transaction ends, and a dead peer is noticed."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from kith.common.config import DB_SESSION_DEFAULTS, Settings
from kith.common.db import make_pool


def test_service_connections_stop_long_statements_and_lock_waits(settings: Settings) -> None:
    limited = dataclasses.replace(settings, db_session={
        **DB_SESSION_DEFAULTS, "KITH_DB_STATEMENT_TIMEOUT_MS": 300,
        "KITH_DB_LOCK_TIMEOUT_MS": 200, "KITH_DB_TCP_USER_TIMEOUT_MS": 4000})
    dsn = limited.database_url("post")
    pool = make_pool(dsn, max_size=2)
    try:
        with pool.connection() as conn:
            shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in (
                "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")}
            assert conn.info.get_parameters()["tcp_user_timeout"] == "4000"
            assert conn.info.get_parameters()["keepalives"] == "1"
        assert shown == {"statement_timeout": "300ms", "lock_timeout": "200ms",
                         "idle_in_transaction_session_timeout": "1min"}
        with pool.connection() as conn, pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(5)")
        with psycopg.connect(dsn) as holder:
            holder.execute("SELECT pg_advisory_lock(42)")
            with pool.connection() as conn, pytest.raises(psycopg.errors.LockNotAvailable):
                conn.execute("SELECT pg_advisory_lock(42)")
    finally:
        pool.close()
