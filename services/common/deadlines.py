"""The caller's deadline, carried into the database work done for a call.

The server interceptor (:mod:`kith.common.rpc`) opens a :class:`CallScope` for every call
it serves, with the deadline the caller set. Connections the call checks out of a pool
(:func:`kith.common.db.make_pool`) join the scope, and:

* a checkout waits for a free connection no longer than the call has left;
* when the call ends before its handler did (the caller's deadline passed, or the caller
  cancelled), every statement still running on those connections is cancelled
  (``PQcancel``, sent on a connection of its own) — and any statement started on them
  until they are handed back — so no lock wait or scan outlives the caller that wanted it;
* once the caller is gone, a further checkout fails at once (:class:`CallAbandoned`).

Nothing costs a round trip on the normal path: the cancel is only sent for an abandoned
call. The session's own ``statement_timeout`` / ``lock_timeout`` (``KITH_DB_*``) stay the
outer bound for work done outside any call (relays, projections, chores).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from psycopg.pq import TransactionStatus

log = logging.getLogger(__name__)
CANCEL_REPEAT_S = 0.2  # an abandoned call's connections are cancelled again this often …
CANCEL_FOR_S = 60.0  # … until they are handed back, at most this long


class CallAbandoned(RuntimeError):
    """The caller of the call being served gave up (deadline passed, or cancelled)."""


class CallScope:
    """The deadline of one served call and the connections it holds."""

    __slots__ = ("_finished", "_held", "_lock", "abandoned", "deadline")

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline  # time.monotonic() by which the caller wants an answer
        self._lock = threading.Lock()
        self._held: list[Any] = []
        self._finished = False
        self.abandoned = False

    def remaining(self) -> float | None:
        """Seconds the caller still waits (``None``: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def hold(self, conn: Any) -> None:
        with self._lock:
            self._held.append(conn)

    def release(self, conn: Any) -> None:
        with self._lock:
            if conn in self._held:
                self._held.remove(conn)

    def finish(self) -> None:
        """The handler returned (or raised): nothing is left to cancel."""
        with self._lock:
            self._finished = True
            self._held.clear()

    def terminated(self) -> None:
        """The RPC ended (gRPC's termination callback). When the handler is still at work
        the caller gave up on it: cancel its statements until it hands its connections back."""
        with self._lock:
            if self._finished:
                return
            self.abandoned = True
            held = list(self._held)
        if held:
            threading.Thread(target=self._cancel_held, name="cancel-abandoned-call",
                             daemon=True).start()

    def _cancel_held(self) -> None:
        until = time.monotonic() + CANCEL_FOR_S
        first = True
        while time.monotonic() < until:
            with self._lock:
                held = list(self._held)
            if not held:
                return
            for conn in held:
                if conn.info.transaction_status != TransactionStatus.ACTIVE:
                    continue  # between statements: the next one will be cancelled
                try:
                    conn.cancel_safe(timeout=2.0)
                except Exception as exc:  # a broken connection has nothing left to cancel
                    log.debug("cancelling an abandoned call's statement: %s", exc)
            if first:
                log.info("caller gave up: cancelled %d running statement(s)", len(held))
                first = False
            time.sleep(CANCEL_REPEAT_S)


current_scope: ContextVar[CallScope | None] = ContextVar("current_call_scope", default=None)


def open_scope(remaining_s: float | None) -> tuple[CallScope, Token[CallScope | None]]:
    """Start serving a call whose caller waits ``remaining_s`` more seconds (``None``: no
    deadline); :func:`close_scope` when its handler is done."""
    scope = CallScope(None if remaining_s is None else time.monotonic() + remaining_s)
    return scope, current_scope.set(scope)


def close_scope(scope: CallScope, token: Token[CallScope | None]) -> None:
    scope.finish()
    current_scope.reset(token)


@contextmanager
def call_scope(remaining_s: float | None) -> Iterator[CallScope]:
    """Serve one call whose caller waits ``remaining_s`` more seconds (``None``: for ever)."""
    scope, token = open_scope(remaining_s)
    try:
        yield scope
    finally:
        close_scope(scope, token)


def remaining() -> float | None:
    """Seconds the caller of the call being served still waits (``None``: no call, or no
    deadline) — bound any wait done on its behalf by it."""
    scope = current_scope.get()
    return None if scope is None else scope.remaining()
