"""Database administration on a real PostgreSQL server (``kith infra prepare``, tests)."""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql


def ensure_database(admin_dsn: str, dbname: str) -> None:
    """Create ``dbname`` on the server of ``admin_dsn`` if it does not exist."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def drop_database(admin_dsn: str, dbname: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
