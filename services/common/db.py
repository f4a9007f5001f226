"""PostgreSQL access: connection pools and ordered, idempotent SQL migrations."""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg_pool import ConnectionPool, PoolTimeout

from kith.common.deadlines import CallAbandoned, current_scope

log = logging.getLogger(__name__)
MIGRATION_LOCK = 0x6B697468  # "kith": serialises concurrent migrators of one database
CHECK_IDLE_S = 2.0  # a connection idle longer than this is checked with a round trip on checkout


def check_connection(conn: psycopg.Connection) -> None:
    """The pool's checkout check, cheap for a connection in steady use.

    A connection back in the pool less than ``CHECK_IDLE_S`` ago is trusted without a round
    trip unless its socket has something to read: an idle connection is sent nothing but
    the server's goodbye (a FATAL notice when the backend is terminated or the server shuts
    down) or end of file (the server died), so a readable socket means it is gone, and it
    gets the full check (which fails, and the pool replaces the connection). Any other
    connection gets the full check (one empty statement): a peer that vanished without a
    word (a host or network failure) is found there, after the TCP keep-alive limits.
    """
    since = getattr(conn, "_kith_idle_since", None)
    if (since is not None and time.monotonic() - since < CHECK_IDLE_S and not conn.broken
            and conn.pgconn.status == psycopg.pq.ConnStatus.OK
            and not select.select([conn.pgconn.socket], [], [], 0)[0]):
        return
    ConnectionPool.check_connection(conn)


class CallBoundPool(ConnectionPool):
    """A pool whose connections, checked out while serving an RPC, follow the caller's
    deadline (:mod:`kith.common.deadlines`): the checkout waits no longer than the caller
    does, and statements still running when the caller gives up are cancelled."""

    def getconn(self, timeout: float | None = None) -> psycopg.Connection:
        scope = current_scope.get()
        if scope is None:
            return super().getconn(timeout)
        if scope.abandoned:
            raise CallAbandoned("the caller gave up")
        left = scope.remaining()
        if left is not None:
            if left <= 0:
                raise PoolTimeout("the caller's deadline passed before a connection was free")
            timeout = min(self.timeout if timeout is None else timeout, left)
        conn = super().getconn(timeout)
        scope.hold(conn)
        return conn

    def putconn(self, conn: psycopg.Connection) -> None:
        scope = current_scope.get()
        if scope is not None:
            scope.release(conn)
        conn._kith_idle_since = time.monotonic()  # type: ignore[attr-defined]
        super().putconn(conn)


def make_pool(
    dsn: str, min_size: int = 1, max_size: int = 10, name: str = "kith"
) -> CallBoundPool:
    """An open pool; connections are checked on checkout (:func:`check_connection`) and
    reconnect after a server restart.
    Work done for an RPC is bounded by its caller's deadline (:class:`CallBoundPool`)."""
    pool = CallBoundPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        check=check_connection,
        kwargs={"autocommit": False},
    )
    pool.open(wait=True, timeout=30)
    return pool


def migration_files(*packages: str) -> list[tuple[str, str]]:
    """``(name, sql)`` for the ``migrations/*.sql`` of each package, common first, in name order."""
    found: list[tuple[str, str]] = []
    for package in packages:
        folder = resources.files(package) / "migrations"
        files = sorted(
            (f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name
        )
        found += [(f"{package}:{f.name}", f.read_text()) for f in files]
    return found


def migrate(dsn: str, migrations: Iterable[tuple[str, str]]) -> list[str]:
    """Apply each migration not yet applied, each in its own transaction; return the applied."""
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A migration may take long and wait for a live runner's locks: no session limits.
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET lock_timeout = 0")
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
            for name, sql in migrations:
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
                log.info("applied migration %s", name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


def migrate_service(dsn: str, package: str) -> list[str]:
    """Migrate a service database: the event store tables, then the service's own."""
    packages = ["kith.common"]
    if package != "kith.common" and (Path(str(resources.files(package))) / "migrations").is_dir():
        packages.append(package)
    return migrate(dsn, migration_files(*packages))


def scalar(conn: psycopg.Connection, query: str | bytes | sql.SQL | sql.Composed,
           params: Params | None = None) -> Any:
    """The first column of the one row ``query`` always returns (an aggregate, a lock try)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise LookupError(f"no row from {query!r}")
    return row[0]
