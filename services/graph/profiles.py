"""Use cases of member profiles: personas, skills, endorsements, the skill directory, birthdays.

A command checks membership and reads the niche's kind from the graph's read
model, loads the membership profile's stream (unsealing it with the member's
key), decides, records the read model and appends the sealed events, in one
transaction; a concurrent append makes it decide again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import psycopg

from kith.common.commands import Command, CommandRunner
from kith.common.errors import NotFound, Unauthenticated, check, require
from kith.common.events import to_new_event
from kith.graph import profile_store, readmodel
from kith.graph.domain.profile import MemberProfile, Profile, profile_stream
from kith.graph.domain.rules import kinds_unlocking_view
from kith.graph.events import ProfileEvent, from_data
from kith.graph.profile_store import BirthdayRow, DirectoryRow, ProfileRow


class ProfileApplication:
    def __init__(self, commands: CommandRunner, clock: Callable[[], int]) -> None:
        self.commands = commands
        self.store = commands.store
        self.clock = clock

    # -- commands ---------------------------------------------------------------------------

    def put_profile(self, actor_id: str, niche_id: str, profile: Profile) -> ProfileRow:
        now = self.clock()
        self._execute("put_profile", actor_id, niche_id, actor_id,
                      lambda state, kind: state.put(actor_id, kind, profile, now))
        return self.get_profile(actor_id, niche_id)

    def endorse(self, actor_id: str, niche_id: str, user_id: str, skill: str) -> None:
        """A co-member vouches for a skill; across a block the member is not found."""
        now = self.clock()
        self._execute("endorse", actor_id, niche_id, user_id,
                      lambda state, kind: state.endorse(actor_id, kind, skill, now),
                      unblocked=True)

    def unendorse(self, actor_id: str, niche_id: str, user_id: str, skill: str) -> None:
        now = self.clock()
        self._execute("unendorse", actor_id, niche_id, user_id,
                      lambda state, kind: state.withdraw(actor_id, skill, now))

    def erase_account(self, user_id: str) -> None:
        """The account is gone: endorsements it gave are withdrawn (recorded), its profiles,
        skills and endorsements leave every view and its key is destroyed."""
        with self.store.pool.connection() as conn:
            endorsed = profile_store.endorsed_by(conn, user_id)
        now = self.clock()
        for niche_id, member_id in endorsed:
            self._execute("erase_account", None, niche_id, member_id,
                          lambda state, kind: state.withdraw_all_by(user_id, now))
        with self.store.transaction() as conn:
            profile_store.erase_user(conn, user_id)

    # -- queries ----------------------------------------------------------------------------

    def get_profile(self, actor_id: str, niche_id: str) -> ProfileRow:
        with self.store.pool.connection() as conn:
            check(readmodel.role_of(conn, niche_id, actor_id) is not None,
                  NotFound("niche not found"))
            return profile_store.profile(conn, niche_id, actor_id)

    def member_profiles(self, actor_id: str, niche_id: str, skill: str) -> list[ProfileRow]:
        with self.store.pool.connection() as conn:
            check(readmodel.role_of(conn, niche_id, actor_id) is not None,
                  NotFound("niche not found"))
            return profile_store.member_profiles(conn, niche_id, skill)

    def personas(self, actor_id: str, keys: Sequence[tuple[str, str]]
                 ) -> list[tuple[str, str, str]]:
        with self.store.pool.connection() as conn:
            return profile_store.personas(conn, actor_id, keys)

    def search_skills(self, actor_id: str, prefix: str, after: list | None,
                      limit: int) -> list[DirectoryRow]:
        with self.store.pool.connection() as conn:
            return profile_store.search_skills(conn, actor_id, prefix,
                                               kinds_unlocking_view("skill_directory"), after,
                                               limit)

    def birthdays(self, actor_id: str) -> list[BirthdayRow]:
        with self.store.pool.connection() as conn:
            return profile_store.birthdays(conn, actor_id, kinds_unlocking_view("upcoming"))

    # -- the command loop -------------------------------------------------------------------

    def _execute(self, name: str, actor_id: str | None, niche_id: str, user_id: str,
                 decide: Callable[[MemberProfile, str], list[ProfileEvent]],
                 unblocked: bool = False) -> None:
        stream = profile_stream(niche_id, user_id)

        def attempt(command: Command) -> None:
            conn = command.conn
            kind = self._check_members(conn, actor_id, niche_id, user_id)
            if unblocked and actor_id is not None:
                check(not readmodel.blocked_among(conn, actor_id, [user_id]),
                      NotFound("no such member"))
            key = profile_store.PROFILE_KEYS.key_for(conn, user_id)
            state = MemberProfile.replay(niche_id, user_id, [
                profile_store.unseal(e, key) for e in self._load(conn, stream)])
            events = decide(state, kind)
            if events:
                profile_store.record(conn, events)
                command.append(stream, state.version,
                               [to_new_event(profile_store.seal(e, key)) for e in events])

        self.commands.run(name, attempt, actor_id=actor_id)

    @staticmethod
    def _check_members(conn: psycopg.Connection, actor_id: str | None, niche_id: str,
                       user_id: str) -> str:
        """The niche's kind, once the actor (if a person) and the member both belong to it."""
        found = readmodel.membership_of(conn, niche_id, user_id)
        if actor_id is None:  # the system (an account's erasure)
            return found[1] if found else ""
        readmodel.lock_account(conn, actor_id, exclusive=False)
        check(not readmodel.account_deleted(conn, actor_id),
              Unauthenticated("this account was deleted", code="account_deleted"))
        mine = readmodel.membership_of(conn, niche_id, actor_id)
        check(mine is not None, NotFound("niche not found"))
        found = require(found, NotFound("no such member"))
        return found[1]

    def _load(self, conn: psycopg.Connection, stream: uuid.UUID) -> list[ProfileEvent]:
        decode = self.store.codec.decode
        events = [from_data(*decode(p)) for p in self.store.load_payloads(stream, conn).payloads]
        return events  # type: ignore[return-value]


