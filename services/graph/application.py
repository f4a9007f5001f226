"""Command and query handlers of the graph.

A command loads its stream, rebuilds the aggregate, decides events, writes
them to the read model and appends them with the version it read, all in one
transaction. If another command recorded first, the append fails with
:class:`ConcurrencyError`; the handler then reloads and decides again (a few
times, with a short jittered back-off). A decision never rests on stale state,
which is what keeps a niche within its cap and an invite within its uses.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

import psycopg

from kith.common.commands import Command, CommandRunner, ResultCodec, RetryPolicy
from kith.common.errors import NotFound, Unauthenticated, check
from kith.common.events import to_new_event
from kith.common.eventstore import EventStore
from kith.graph import niche_keys, readmodel
from kith.graph.domain.blocks import BlockList
from kith.graph.domain.niche import Invite, Niche
from kith.graph.domain.rules import (
    Role,
    hash_code,
    is_well_formed_code,
    new_invite_code,
    validate_invite_terms,
    validate_niche,
)
from kith.graph.events import GraphEvent, from_data
from kith.graph.profiles import ProfileApplication
from kith.graph.readmodel import MemberRow, NicheRow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Aggregate(Protocol):
    version: int

    def apply_all(self, events: Iterable) -> Self: ...


A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class IssuedInvite:
    """A new invite; ``code`` is handed out once and never stored."""

    code: str
    niche_id: str
    max_uses: int
    expires_at_ms: int
    invite_id: str = ""


def _view(niche: Niche, role: Role | None) -> NicheRow:
    return NicheRow(niche.niche_id, niche.name, niche.kind, niche.description, niche.member_cap,
                    len(niche.members), niche.created_at_ms, niche.archived, role)


class GraphApplication:
    """The graph's use cases over its event store and read model."""

    def __init__(self, store: EventStore, max_cap: int,
                 clock: Callable[[], int] = wall_clock_ms,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.store = store
        self.max_cap = max_cap
        self.clock = clock
        # A read-model key collision also means a concurrent writer recorded first.
        self.commands = CommandRunner(store, RetryPolicy(attempts=max_attempts),
                                      retry_on=readmodel.UNIQUE_KEYS)
        self.profiles = ProfileApplication(self.commands, lambda: self.clock())

    # -- commands ---------------------------------------------------------------------------

    def create_niche(self, actor_id: str, name: str, kind: str, description: str,
                     member_cap: int) -> NicheRow:
        settings = validate_niche(name, kind, description, member_cap, self.max_cap)
        niche_id = str(uuid.uuid4())
        # A repeat of the command (same command id) answers with the niche it created.
        created = ResultCodec[Niche](
            dump=lambda niche: {"niche_id": niche.niche_id},
            load=lambda conn, kept: self._niche(kept["niche_id"])(
                self._load(conn, uuid.UUID(kept["niche_id"]))))
        niche = self._execute(
            "create_niche", niche_id, self._niche(niche_id),
            lambda _: Niche.create(niche_id, actor_id, settings, self.clock()), actor_id,
            result=created)
        return _view(niche, Role.OWNER)

    def create_invite(self, actor_id: str, niche_id: str, max_uses: int,
                      expires_in_s: int) -> IssuedInvite:
        terms = validate_invite_terms(max_uses, expires_in_s)
        issued = {"code": new_invite_code(), "invite_id": str(uuid.uuid4())}
        code_sha256 = hash_code(issued["code"])

        def first_issued(conn: psycopg.Connection, kept: dict[str, str]) -> Niche:
            issued.update(kept)  # the code the first run handed out (kept until purged)
            return self._niche(niche_id)(self._load(conn, uuid.UUID(niche_id)))

        niche = self._execute(
            "create_invite", niche_id, self._niche(niche_id),
            lambda n: n.create_invite(actor_id, issued["invite_id"], code_sha256, terms,
                                      self.clock()),
            actor_id, result=ResultCodec[Niche](lambda _: dict(issued), first_issued))
        invite = niche.invites.get(hash_code(issued["code"]))
        check(invite is not None, NotFound("invite not found"))  # revoked since the first run
        assert invite is not None
        return IssuedInvite(issued["code"], niche_id, invite.max_uses, invite.expires_at_ms,
                            issued["invite_id"])

    def list_invites(self, actor_id: str, niche_id: str) -> list[Invite]:
        """The niche's working invites, for its owner or admins (NOT_FOUND to outsiders)."""
        with self.store.pool.connection() as conn:
            niche = Niche.replay(niche_id, self._load(conn, uuid.UUID(niche_id)))  # type: ignore[arg-type]
        check(niche.version > 0 and not niche.archived, NotFound("niche not found"))
        return niche.open_invites(actor_id, self.clock())

    def revoke_invite(self, actor_id: str, niche_id: str, invite_id: str) -> None:
        self._execute("revoke_invite", niche_id, self._niche(niche_id),
                      lambda n: n.revoke_invite(actor_id, invite_id, self.clock()), actor_id)

    def accept_invite(self, actor_id: str, code: str) -> NicheRow:
        """Join the invite's niche; NOT_FOUND for unknown, expired and used-up codes alike."""
        code_sha256 = hash_code(code)
        niche_id = None
        if is_well_formed_code(code):
            with self.store.pool.connection() as conn:
                niche_id = readmodel.invite_niche(conn, code_sha256)
        if niche_id is None:
            raise NotFound("invite not found")
        niche = self._execute(
            "accept_invite",             niche_id, self._niche(niche_id),
            lambda n: n.accept_invite(actor_id, code_sha256, self.clock()), actor_id)
        return _view(niche, Role.MEMBER)

    def remove_member(self, actor_id: str, niche_id: str, user_id: str) -> None:
        self._execute("remove_member", niche_id, self._niche(niche_id),
                      lambda n: n.remove_member(actor_id, user_id, self.clock()), actor_id)

    def change_role(self, actor_id: str, niche_id: str, user_id: str, role: Role) -> None:
        self._execute("change_role", niche_id, self._niche(niche_id),
                      lambda n: n.change_role(actor_id, user_id, role, self.clock()), actor_id)

    def block(self, actor_id: str, user_id: str) -> None:
        self._execute("block", actor_id, self._blocks(actor_id),
                      lambda b: b.block(user_id, self.clock()), actor_id)

    def unblock(self, actor_id: str, user_id: str) -> None:
        self._execute("unblock", actor_id, self._blocks(actor_id),
                      lambda b: b.unblock(user_id, self.clock()), actor_id)

    def purge_account(self, user_id: str) -> None:
        """A deleted account leaves every niche (handing ownership on) and loses its blocks.

        Idempotent: running it again for the same user decides nothing new. The account is
        marked deleted first, under the exclusive account lock: a command of theirs still
        in flight commits before (and is undone below), any later one is refused.
        """
        with self.store.transaction() as conn:
            readmodel.lock_account(conn, user_id, exclusive=True)
            readmodel.mark_account_deleted(conn, user_id)
        with self.store.pool.connection() as conn:
            niche_ids = readmodel.niche_ids_of(conn, user_id)
        for niche_id in niche_ids:
            self._execute("purge_account", niche_id, self._niche(niche_id),
                          lambda n: n.remove_deleted_account(user_id, self.clock()), None)
        self._execute("purge_account", user_id, self._blocks(user_id),
                      lambda b: b.unblock_all(self.clock()), None)
        self.profiles.erase_account(user_id)  # personas, skills, endorsements: gone, unreadable

    # -- queries ----------------------------------------------------------------------------

    def get_niche(self, actor_id: str, niche_id: str) -> NicheRow:
        with self.store.pool.connection() as conn:
            niche = readmodel.niche_for_member(conn, niche_id, actor_id)
        if niche is None:
            raise NotFound("niche not found")
        return niche

    def list_niches(self, actor_id: str) -> list[NicheRow]:
        with self.store.pool.connection() as conn:
            return readmodel.niches_of(conn, actor_id)

    def list_members(self, actor_id: str, niche_id: str) -> list[MemberRow]:
        with self.store.pool.connection() as conn:
            if readmodel.role_of(conn, niche_id, actor_id) is None:
                raise NotFound("niche not found")
            return readmodel.members_of(conn, niche_id)

    def membership(self, niche_id: str, user_id: str) -> Role | None:
        """The user's role in the niche, None unless a member."""
        with self.store.pool.connection() as conn:
            return readmodel.role_of(conn, niche_id, user_id)

    def membership_kind(self, niche_id: str, user_id: str) -> tuple[Role, str] | None:
        """The user's role in the niche and the niche's kind, None unless a member."""
        with self.store.pool.connection() as conn:
            return readmodel.membership_of(conn, niche_id, user_id)

    def shares_niche(self, user_id: str, others: Sequence[str]) -> list[str]:
        """``others`` (in request order, once each) sharing at least one niche with the user."""
        with self.store.pool.connection() as conn:
            sharing = readmodel.sharing_niche(conn, user_id, others)
        return [u for u in dict.fromkeys(others) if u in sharing]

    def list_blocks(self, actor_id: str) -> list[str]:
        with self.store.pool.connection() as conn:
            return readmodel.blocked_by(conn, actor_id)

    def blocked_among(self, user_id: str, others: Sequence[str]) -> list[str]:
        """``others`` (in request order, once each) with a block either way with the user."""
        with self.store.pool.connection() as conn:
            blocked = readmodel.blocked_among(conn, user_id, others)
        return [u for u in dict.fromkeys(others) if u in blocked]

    # -- the command loop -------------------------------------------------------------------

    def _niche(self, niche_id: str) -> Callable[[list[GraphEvent]], Niche]:
        return lambda events: Niche.replay(niche_id, events)  # type: ignore[arg-type]

    def _blocks(self, user_id: str) -> Callable[[list[GraphEvent]], BlockList]:
        return lambda events: BlockList.replay(user_id, events)  # type: ignore[arg-type]

    def _execute(self, name: str, stream: str, rebuild: Callable[[list[GraphEvent]], A],
                 decide: Callable[[A], Sequence[GraphEvent]], actor_id: str | None,
                 result: ResultCodec[A] | None = None) -> A:
        """Load, decide, record (through the runner: a concurrent write decides again;
        with ``result``, a repeat of the command id returns the first outcome)."""
        stream_id = uuid.UUID(stream)

        def attempt(command: Command) -> A:
            conn = command.conn
            if actor_id is not None:  # a user's own command, not the system's
                readmodel.lock_account(conn, actor_id, exclusive=False)
                check(not readmodel.account_deleted(conn, actor_id),
                      Unauthenticated("this account was deleted", code="account_deleted"))
            state = rebuild(self._load(conn, stream_id))
            events = list(decide(state))
            if events:
                readmodel.record(conn, events)
                command.append(stream_id, state.version,
                               [to_new_event(e) for e in niche_keys.seal(conn, events)])
            return state.apply_all(events)

        return self.commands.run(name, attempt, actor_id=actor_id, result=result)

    def _load(self, conn: psycopg.Connection, stream_id: uuid.UUID) -> list[GraphEvent]:
        """A niche's (or a block list's) events, opened: one statement reads the payloads
        and, for a niche, its key (a block list's stream has no key row)."""
        loaded = self.store.load_payloads(stream_id, conn, keyed_by=niche_keys.NICHE_KEYS)
        decode = self.store.codec.decode
        return niche_keys.unseal(loaded.stored_key,
                                 [from_data(*decode(p)) for p in loaded.payloads])
