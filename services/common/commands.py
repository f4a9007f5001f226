"""One path from a command's decision to its record: the command runner.

Modelled on the ``eventsourcing`` library's ``Application.save()`` → ``_record()``:
every command handler of every service runs through :meth:`CommandRunner.run`,
which

1. opens the transaction (its own, or a savepoint in the caller's),
2. hands the handler a :class:`Command`: the connection plus :meth:`Command.append`,
   which records decided events with the expected version and the one
   :func:`event_metadata` of the command,
3. commits, and on :class:`~kith.common.eventstore.ConcurrencyError` (or a unique
   violation the service names as meaning the same) reloads by running the handler
   again, after an exponential back-off with full jitter (:class:`RetryPolicy`); once
   the attempts are spent, :class:`~kith.common.errors.Conflict` ``version_conflict``,
4. with a command id (:data:`kith.common.logs.command_id`, carried from the
   gateway's ``Idempotency-Key``) and a :class:`ResultCodec`, records the command's
   result in the ``commands`` table in the same transaction; a repeat of the command
   returns that first result instead of deciding again (exactly once per id),
5. opens one tracing span per command (``command <name>``) when tracing is on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from kith.common import tracing
from kith.common.errors import Conflict
from kith.common.eventstore import ConcurrencyError, EventStore, NewEvent, RecordedEvent
from kith.common.logs import command_id as current_command_id
from kith.common.logs import request_id

log = logging.getLogger(__name__)
T = TypeVar("T")
SYSTEM_ACTOR = "system"  # the actor of work no user asked for (an account's erasure)
COMMANDS_KEY = "commands_pkey"  # a concurrent repeat of an identified command
COMMANDS_KEPT_S = 24 * 3600  # as long as the gateway keeps an Idempotency-Key


# -- event metadata ---------------------------------------------------------------------------


def event_metadata(actor_id: str | uuid.UUID | None, *, causation_id: str | None = None,
                   command: str | None = None, **extra: Any) -> dict[str, Any]:
    """The metadata every recorded event carries (one spelling, no nulls, no empty strings).

    ``actor_id``: the acting user (``"system"`` when none); ``correlation_id``: the
    request id the call came with; ``command_id``: the idempotent command it recorded;
    ``causation_id``: the event that caused it (a projection's work); ``command``: the
    handler's name. Absent values are left out; ``extra`` adds service-specific keys.
    """
    meta: dict[str, Any] = {"actor_id": str(actor_id) if actor_id else SYSTEM_ACTOR}
    if command:
        meta["command"] = command
    if correlation := request_id.get():
        meta["correlation_id"] = correlation
    if cid := current_command_id.get():
        meta["command_id"] = cid
    if causation_id:
        meta["causation_id"] = causation_id
    meta.update(extra)
    return meta


@dataclass(frozen=True)
class EventMetadata:
    """Recorded metadata read back, whichever spelling wrote it (``request_id`` was
    ``correlation_id`` in messaging; nulls and ``""`` meant "none")."""

    actor_id: str | None
    correlation_id: str | None
    causation_id: str | None
    command_id: str | None

    @classmethod
    def parse(cls, stored: Mapping[str, Any]) -> EventMetadata:
        def text(*names: str) -> str | None:
            for name in names:
                if isinstance(value := stored.get(name), str) and value:
                    return value
            return None

        actor = text("actor_id")
        return cls(None if actor == SYSTEM_ACTOR else actor,
                   text("correlation_id", "request_id"), text("causation_id"),
                   text("command_id"))


# -- the retry policy -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential back-off and full jitter between them."""

    attempts: int = 10
    base_delay_s: float = 0.002
    max_delay_s: float = 0.2

    def delay_s(self, failures: int, rng: random.Random | None = None) -> float:
        """How long to wait after the ``failures``-th failed attempt (1-based): uniform
        in ``[0, min(max, base · 2^(failures-1))]``."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** min(failures - 1, 30))
        return (rng or random).uniform(0, ceiling)


# -- idempotent commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResultCodec(Generic[T]):
    """How an identified command keeps its result: ``dump`` to JSON-able data (ids, not
    personal data) at the first run, ``load`` it back (re-reading what it names through
    the connection) for a repeat."""

    dump: Callable[[T], dict[str, Any]]
    load: Callable[[psycopg.Connection, dict[str, Any]], T]


# -- the runner -------------------------------------------------------------------------------


@dataclass
class Command:
    """One attempt of one command: its transaction and how it records events."""

    name: str
    conn: psycopg.Connection
    store: EventStore
    actor_id: str | None
    metadata: dict[str, Any]

    def append(self, stream_id: uuid.UUID | str, expected_version: int,
               events: Sequence[NewEvent], **extra: Any) -> list[RecordedEvent]:
        """Record ``events`` after ``expected_version`` in this command's transaction
        (``extra``: metadata keys beyond the command's own)."""
        stream = stream_id if isinstance(stream_id, uuid.UUID) else uuid.UUID(stream_id)
        meta = {**self.metadata, **extra} if extra else self.metadata
        # No savepoint of its own: an error ends the attempt, whose transaction (or savepoint,
        # in a caller's transaction) the runner rolls back before deciding again.
        return self.store.append(stream, expected_version, events, meta, conn=self.conn,
                                 savepoint=False)


class CommandRunner:
    """Runs a service's commands: transaction, decision, append, retry, idempotency, span."""

    def __init__(self, store: EventStore, policy: RetryPolicy | None = None,
                 retry_on: Sequence[str] = (), conflict_message: str =
                 "too many concurrent changes; try again",
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        """``retry_on``: names of unique constraints whose violation means, like a version
        conflict, that a concurrent command recorded first (reload and decide again)."""
        self.store = store
        self.policy = policy or RetryPolicy()
        self.retry_on = frozenset(retry_on) | {COMMANDS_KEY}
        self.conflict_message = conflict_message
        self.sleep = sleep
        self.rng = rng

    def run(self, name: str, handler: Callable[[Command], T], *,
            actor_id: str | uuid.UUID | None, conn: psycopg.Connection | None = None,
            result: ResultCodec[T] | None = None, **metadata: Any) -> T:
        """Run ``handler`` (load, decide, ``command.append``) until it records without a
        conflict; return what it returns.

        ``conn``: run inside the caller's transaction (a savepoint per attempt).
        ``result``: the command is idempotent under the current command id: its result is
        recorded with its events, and a repeat returns it. ``metadata``: extra keys for
        every event it records.
        """
        actor = str(actor_id) if actor_id else None
        meta = event_metadata(actor, command=name, **metadata)
        cid = current_command_id.get() if result is not None else None
        with tracing.command_span(name):
            for failures in range(1, self.policy.attempts + 1):
                try:
                    with self._transaction(conn) as tx:
                        if cid is not None and result is not None:
                            earlier = _recorded(tx, cid, actor, name)
                            if earlier is not None:
                                return result.load(tx, earlier)
                        outcome = handler(Command(name, tx, self.store, actor, meta))
                        if cid is not None and result is not None:
                            _record(tx, cid, actor, name, result.dump(outcome))
                        return outcome
                except ConcurrencyError:
                    pass
                except psycopg.errors.UniqueViolation as exc:
                    if exc.diag.constraint_name not in self.retry_on:
                        raise
                if failures < self.policy.attempts:
                    log.debug("concurrent write under %s; deciding again (attempt %d)", name,
                              failures + 1)
                    self.sleep(self.policy.delay_s(failures, self.rng))
        raise Conflict(self.conflict_message, code="version_conflict")

    @contextmanager
    def _transaction(self, conn: psycopg.Connection | None) -> Iterator[psycopg.Connection]:
        if conn is None:
            with self.store.transaction() as own:
                yield own
        else:
            with conn.transaction():
                yield conn


def _recorded(conn: psycopg.Connection, cid: str, actor: str | None,
              name: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT result FROM commands WHERE command_id = %s AND actor_id = %s"
                       " AND name = %s", (cid, actor or SYSTEM_ACTOR, name)).fetchone()
    return None if row is None else dict(row[0])


def _record(conn: psycopg.Connection, cid: str, actor: str | None, name: str,
            result: dict[str, Any]) -> None:
    conn.execute("INSERT INTO commands (command_id, actor_id, name, result)"
                 " VALUES (%s, %s, %s, %s)", (cid, actor or SYSTEM_ACTOR, name, Jsonb(result)))


def purge_commands(conn: psycopg.Connection, older_than_s: int = COMMANDS_KEPT_S) -> int:
    """Forget identified commands recorded more than ``older_than_s`` ago."""
    return conn.execute("DELETE FROM commands WHERE recorded_at < now() - make_interval("
                        "secs => %s)", (older_than_s,)).rowcount


def forget_commands(pool: ConnectionPool, stop: threading.Event,
                    every_s: float = 3600.0) -> None:
    """A service's chore: purge expired command records every ``every_s`` until ``stop``."""
    while not stop.wait(every_s):
        with pool.connection() as conn:
            if forgotten := purge_commands(conn):
                log.info("forgot %d expired command records", forgotten)
