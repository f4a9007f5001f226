"""identity's command and query handlers.

A command loads its stream(s), lets the domain decide, then writes the read
model and appends in one transaction (appends last); on a version conflict it
reloads and decides again. Slow argon2 work happens outside transactions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

from kith.common.commands import Command, CommandRunner
from kith.common.errors import check
from kith.common.eventstore import EventStore
from kith.identity import keys, readmodel
from kith.identity.domain import (
    Account,
    Session,
    SessionRevoked,
    account_not_found,
    check_active,
    check_fields,
    check_password_matches,
    check_registration,
    check_session_owner,
    invalid_credentials,
    invalid_refresh_token,
    password_problem,
    reauthentication_required,
    refresh_token_reused,
    register,
    session_ended,
    session_not_found,
    start_session,
    username_taken,
)
from kith.identity.events import Cipher, account_event, session_event, to_new_event
from kith.identity.passwords import Passwords
from kith.identity.readmodel import Profile
from kith.identity.tokens import (
    AccessTokens,
    family_of,
    new_refresh_token,
    refresh_token_sha256,
)


@dataclass(frozen=True)
class IssuedTokens:
    user_id: uuid.UUID
    session_id: uuid.UUID
    access_token: str
    refresh_token: str
    expires_in_s: int
    refresh_expires_in_s: int


@dataclass(frozen=True)
class VerifiedToken:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at_ms: int


class IdentityApplication:
    """Accounts, credentials, sessions and profiles over one event store."""

    def __init__(self, store: EventStore, passwords: Passwords, access_tokens: AccessTokens,
                 refresh_ttl_s: int, clock: Callable[[], float] = time.time,
                 session_max_age_s: int = 90 * 24 * 3600) -> None:
        self.store = store
        self.passwords = passwords
        self.access_tokens = access_tokens
        self.refresh_ttl_ms = refresh_ttl_s * 1000
        self.session_max_age_ms = session_max_age_s * 1000
        self.clock = clock
        self.commands = CommandRunner(store)

    # -- accounts ------------------------------------------------------------------------------

    def register(self, username: str, password: str, display_name: str, bio: str) -> Profile:
        check_registration(username, password, display_name, bio)
        with self.store.pool.connection() as conn:  # fail fast before the costly hash
            check(not readmodel.username_in_use(conn, username), username_taken())
        event = register(uuid.uuid4(), username, password, self.passwords.hash(password),
                         display_name, bio, self._now_ms())

        def record(command: Command) -> None:
            cipher = Cipher(keys.create(command.conn, event.user_id), event.user_id)
            readmodel.add_account(command.conn, event)  # the unique index decides races
            command.append(event.user_id, 0, [to_new_event(event, cipher)])

        self.commands.run("register", record, actor_id=event.user_id)
        return Profile(event.user_id, username, display_name, bio, event.registered_at_ms)

    def update_profile(self, actor_id: uuid.UUID, display_name: str | None,
                       bio: str | None) -> Profile:
        def attempt(command: Command) -> Profile:
            conn = command.conn
            account, cipher = self._active_account(conn, actor_id)
            event = account.change_profile(display_name, bio, self._now_ms())
            if event is not None:
                readmodel.change_profile(conn, event)
                command.append(actor_id, account.version, [to_new_event(event, cipher)])
            found = readmodel.profile(conn, actor_id)
            if found is None:
                raise account_not_found()
            return found

        return self.commands.run("update_profile", attempt, actor_id=actor_id)

    def change_password(self, actor_id: uuid.UUID, current_password: str, new_password: str,
                        keep_session_id: uuid.UUID | None) -> None:
        """Set a new password and end every other session of the user."""
        check_fields({"new_password": password_problem(new_password)})
        with self.store.pool.connection() as conn:
            verified_hash = self._active_account(conn, actor_id)[0].password_hash
        check_password_matches(self.passwords.verify(verified_hash, current_password))
        new_hash = self.passwords.hash(new_password)

        def attempt(command: Command) -> None:
            conn = command.conn
            account, cipher = self._active_account(conn, actor_id)
            if account.password_hash != verified_hash:  # changed meanwhile: check again
                check_password_matches(
                    self.passwords.verify(account.password_hash, current_password))
            now = self._now_ms()
            event = account.change_password(new_hash, now)
            readmodel.change_password(conn, actor_id, new_hash)
            revoked = self._revoke_sessions(conn, actor_id, "password_changed", now,
                                            keep=keep_session_id)
            command.append(actor_id, account.version, [to_new_event(event, cipher)])
            _append_revocations(command, revoked)

        self.commands.run("change_password", attempt, actor_id=actor_id)

    def delete_account(self, actor_id: uuid.UUID, password: str) -> None:
        """End every session, forget the read rows and destroy the data key (crypto-shredding).

        Irreversible, so the password is asked again: a stolen access token alone
        cannot erase an account (wrong or missing: ``reauthentication_required``).
        """
        with self.store.pool.connection() as conn:
            verified_hash = self._active_account(conn, actor_id)[0].password_hash
        check(bool(password) and self.passwords.verify(verified_hash, password),
              reauthentication_required())

        def attempt(command: Command) -> None:
            conn = command.conn
            account, _ = self._active_account(conn, actor_id)
            now = self._now_ms()
            event = account.delete(now)
            revoked = self._revoke_sessions(conn, actor_id, "account_deleted", now)
            readmodel.remove_account(conn, actor_id)
            keys.destroy(conn, actor_id)
            command.append(actor_id, account.version, [to_new_event(event)])
            _append_revocations(command, revoked)

        self.commands.run("delete_account", attempt, actor_id=actor_id)

    # -- sessions ------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> IssuedTokens:
        """Start a session family for valid credentials."""
        with self.store.pool.connection() as conn:
            found = readmodel.credentials(conn, username)
        if found is None:
            self.passwords.burn(password)
            raise invalid_credentials()
        user_id, password_hash = found
        check(self.passwords.verify(password_hash, password), invalid_credentials())
        token, now = new_refresh_token(), self._now_ms()
        event = start_session(uuid.uuid4(), user_id, refresh_token_sha256(token), now,
                              self.refresh_ttl_ms)

        def record(command: Command) -> None:
            readmodel.add_session(command.conn, event)
            command.append(event.session_id, 0, [to_new_event(event)])

        self.commands.run("authenticate", record, actor_id=user_id)
        return self._issue(user_id, event.session_id, token, now, event.expires_at_ms)

    def refresh(self, refresh_token: str) -> IssuedTokens:
        """Rotate: a new pair for the current refresh token; a spent one revokes the family."""
        presented = refresh_token_sha256(refresh_token)
        token = new_refresh_token(family_of(refresh_token))

        def attempt(command: Command) -> tuple[Session, int, int] | None:
            conn = command.conn
            session_id = readmodel.session_of_token(conn, presented)
            session = self._session(conn, session_id) if session_id else None
            if session is None:
                raise invalid_refresh_token()
            check(readmodel.account_exists(conn, session.user_id), session_ended())
            now = self._now_ms()
            event = session.refresh(presented, refresh_token_sha256(token), now,
                                    self.refresh_ttl_ms, self.session_max_age_ms)
            if isinstance(event, SessionRevoked):
                readmodel.revoke_session(conn, session.session_id, now)
            else:
                readmodel.rotate_token(conn, event)
            command.append(session.session_id, session.version, [to_new_event(event)],
                           actor_id=str(session.user_id))
            if isinstance(event, SessionRevoked):
                return None  # commit the revocation, then refuse
            return session, now, event.expires_at_ms

        refreshed = self.commands.run("refresh", attempt, actor_id=None)
        if refreshed is None:
            raise refresh_token_reused()
        session, now, expires_at_ms = refreshed
        return self._issue(session.user_id, session.session_id, token, now, expires_at_ms)

    def logout(self, actor_id: uuid.UUID, session_id: uuid.UUID) -> None:
        """End the actor's session family ``session_id`` (again: a no-op)."""
        self._end_session(lambda conn: session_id, actor_id)

    def revoke_refresh_token(self, refresh_token: str, actor_id: uuid.UUID | None) -> None:
        """End the family of ``refresh_token`` (current or spent); holding it is the proof."""
        def find(conn: psycopg.Connection) -> uuid.UUID:
            session_id = readmodel.session_of_token(conn, refresh_token_sha256(refresh_token))
            if session_id is None:
                raise invalid_refresh_token()
            return session_id

        self._end_session(find, actor_id)

    def verify(self, access_token: str) -> VerifiedToken:
        """The user and session of a valid access token of a live session and account."""
        claims = self.access_tokens.verify(access_token)
        with self.store.pool.connection() as conn:
            live = readmodel.session_is_live(conn, claims.session_id, claims.user_id)
        check(live, session_ended())
        return VerifiedToken(claims.user_id, claims.session_id, claims.expires_at_s * 1000)

    # -- queries -------------------------------------------------------------------------------

    def profile(self, user_id: uuid.UUID) -> Profile:
        with self.store.pool.connection() as conn:
            found = readmodel.profile(conn, user_id)
        if found is None:
            raise account_not_found()
        return found

    def profiles(self, user_ids: Sequence[uuid.UUID]) -> list[Profile]:
        """Profiles of the existing accounts among ``user_ids``."""
        if not user_ids:
            return []
        with self.store.pool.connection() as conn:
            return readmodel.profiles(conn, sorted(set(user_ids)))

    # -- helpers -------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _issue(self, user_id: uuid.UUID, session_id: uuid.UUID, refresh_token: str, now_ms: int,
               refresh_expires_at_ms: int) -> IssuedTokens:
        access = self.access_tokens.issue(user_id, session_id, now_ms // 1000)
        return IssuedTokens(user_id, session_id, access, refresh_token, self.access_tokens.ttl_s,
                            max(0, (refresh_expires_at_ms - now_ms) // 1000))

    def _active_account(self, conn: psycopg.Connection,
                        user_id: uuid.UUID) -> tuple[Account, Cipher]:
        """The live account with the cipher of its personal data; NotFound once deleted."""
        key = keys.load(conn, user_id)
        if key is None:  # no key, no account: deleted or never registered
            raise account_not_found()
        cipher = Cipher(key, user_id)
        events = self.store.load(user_id, conn)
        account = Account.replay(account_event(e.type, self.store.decode(e), cipher)
                                 for e in events)
        return check_active(account), cipher

    def _end_session(self, find: Callable[[psycopg.Connection], uuid.UUID],
                     actor_id: uuid.UUID | None) -> None:
        def attempt(command: Command) -> None:
            conn = command.conn
            session = self._session(conn, find(conn))
            if actor_id is not None:
                session = check_session_owner(session, actor_id)
            if session is None:
                raise session_not_found()
            event = session.revoke("logout", self._now_ms())
            if event is not None:
                readmodel.revoke_session(conn, session.session_id, event.revoked_at_ms)
                _append_revocations(command, [(session, event)], actor_id=str(session.user_id))

        self.commands.run("end_session", attempt, actor_id=actor_id)

    def _session(self, conn: psycopg.Connection, session_id: uuid.UUID) -> Session | None:
        events = self.store.load(session_id, conn)
        return Session.replay(session_event(e.type, self.store.decode(e)) for e in events)

    def _revoke_sessions(self, conn: psycopg.Connection, user_id: uuid.UUID, reason: str,
                         now_ms: int, keep: uuid.UUID | None = None
                         ) -> list[tuple[Session, SessionRevoked]]:
        """Decide and record (read model only) the end of the user's live sessions."""
        decided = []
        for session_id in readmodel.active_sessions(conn, user_id):
            if session_id == keep:
                continue
            session = self._session(conn, session_id)
            event = session.revoke(reason, now_ms) if session else None
            if session and event:
                readmodel.revoke_session(conn, session_id, now_ms)
                decided.append((session, event))
        return decided


def _append_revocations(command: Command, revoked: Sequence[tuple[Session, SessionRevoked]],
                        **metadata: str) -> None:
    for session, event in revoked:
        command.append(session.session_id, session.version, [to_new_event(event)], **metadata)
