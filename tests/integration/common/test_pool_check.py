"""The pool's checkout check: cheap for connections in steady use, yet a connection the
server dropped is never handed out (it is replaced on checkout)."""

from __future__ import annotations

import tempfile

import psycopg

from kith.common import db
from kith.common.config import Settings
from kith.common.db import make_pool


def backend_pid(pool) -> int:  # type: ignore[no-untyped-def]
    with pool.connection() as conn:
        return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])


def checks_sent(pool, monkeypatch, idle_s: float) -> str:  # type: ignore[no-untyped-def]
    """The protocol messages libpq sent while the pool handed its one connection out again."""
    monkeypatch.setattr(db, "CHECK_IDLE_S", idle_s)
    with tempfile.TemporaryFile() as traced:
        with pool.connection() as conn:
            conn.pgconn.trace(traced.fileno())
        with pool.connection() as conn:
            conn.pgconn.untrace()
        traced.seek(0)
        return traced.read().decode()


def test_a_connection_in_steady_use_is_reused_without_a_round_trip(
        settings: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(settings.database_url("post"), min_size=1, max_size=1)
    try:
        assert "Query" not in checks_sent(pool, monkeypatch, db.CHECK_IDLE_S)
        # Idle longer than the limit (0 s here): the check asks the server.
        assert "Query" in checks_sent(pool, monkeypatch, 0.0)
    finally:
        pool.close()


def test_a_terminated_connection_is_replaced_on_checkout(settings: Settings) -> None:
    dsn = settings.database_url("post")
    pool = make_pool(dsn, min_size=1, max_size=1)
    try:
        for _ in range(3):
            victim = backend_pid(pool)  # back in the pool just now: the cheap path
            with psycopg.connect(dsn, autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s)", (victim,)).fetchone()[0]
                # The server is gone from the backend before the next checkout.
                while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                    (victim,)).fetchone():
                    pass
            with pool.connection() as conn:  # no error: the dropped connection was replaced
                assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != victim
    finally:
        pool.close()
