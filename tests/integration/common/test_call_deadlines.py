"""A server stops the database work of a call whose caller gave up.

The gateway waits ``KITH_GATEWAY_RPC_DEADLINE_S`` (5 s) for a call, while a statement may
run for ``KITH_DB_STATEMENT_TIMEOUT_MS`` (30 s) and wait for a lock ``KITH_DB_LOCK_TIMEOUT_MS``
(10 s). A statement outliving its caller would hold a pooled connection and its locks for
nobody: when the caller's deadline passes, the server cancels it.
"""

from __future__ import annotations

import time
import uuid

import grpc
import psycopg
import pytest
from psycopg_pool import PoolTimeout

from kith.common.config import Settings
from kith.common.db import make_pool
from kith.common.deadlines import CallAbandoned, call_scope
from kith.graph.entrypoint import SPEC
from kith.protos import graph_pb2 as pb
from kith.protos import graph_pb2_grpc
from tests.support.environment import ServiceStack
from tests.support.rpc import channel

CALLER_DEADLINE_S = 1.0
CANCELLED_WITHIN_S = 1.5  # after the caller's deadline


def _lock_waiters(dsn: str, holder_pid: int) -> list[str]:
    """Statements of other sessions waiting for a lock the holder has."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [q for (q,) in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
            (holder_pid,))]


def test_a_statement_waiting_past_its_callers_deadline_is_cancelled(
        stack: ServiceStack, settings: Settings) -> None:
    running = stack.start(SPEC)
    dsn = settings.database_url("graph")
    with psycopg.connect(dsn) as holder, channel(running.address) as chan:
        stub = graph_pb2_grpc.GraphServiceStub(chan)
        actor = str(uuid.uuid4())
        assert list(stub.ListNiches(pb.ListNichesRequest(actor_id=actor)).items) == []

        # Somebody holds the read model's table (a migration, a long report …).
        holder.execute("LOCK TABLE memberships IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        call = stub.ListNiches.future(pb.ListNichesRequest(actor_id=actor),
                                      timeout=CALLER_DEADLINE_S)
        while not _lock_waiters(dsn, holder.info.backend_pid):  # the service's query waits
            assert not call.done(), "the call ended without waiting for the lock"
            time.sleep(0.05)
        with pytest.raises(grpc.RpcError) as failure:
            call.result()
        assert failure.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]

        # The session's lock_timeout (10 s) would keep it waiting; the caller's deadline does not.
        while waiters := _lock_waiters(dsn, holder.info.backend_pid):
            assert time.monotonic() - started < CALLER_DEADLINE_S + CANCELLED_WITHIN_S, (
                f"the service still waits for the lock after its caller gave up: {waiters}")
            time.sleep(0.05)
        print(f"statement cancelled {time.monotonic() - started - CALLER_DEADLINE_S:.2f} s "
              "after the caller's deadline")
        holder.rollback()

        # The service is none the worse: its pool serves the next call at once.
        assert list(stub.ListNiches(pb.ListNichesRequest(actor_id=actor), timeout=2).items) == []


def test_work_for_a_call_waits_for_a_connection_no_longer_than_its_caller(
        settings: Settings) -> None:
    pool = make_pool(settings.database_url("graph"), max_size=1)
    try:
        with pool.connection(), call_scope(0.3):  # the only connection is busy
            started = time.monotonic()
            with pytest.raises(PoolTimeout), pool.connection():
                pass
            assert time.monotonic() - started < 1.0  # not the pool's 30 s
        with call_scope(5.0) as scope:
            scope.terminated()  # the caller went away before the handler asked for more
            with pytest.raises(CallAbandoned), pool.connection():
                pass
        with call_scope(5.0) as scope, pool.connection() as conn:  # a call that finishes
            assert conn.execute("SELECT 1").fetchone() == (1,)
        scope.terminated()  # gRPC's termination callback, after the handler returned
        assert not scope.abandoned
    finally:
        pool.close()
