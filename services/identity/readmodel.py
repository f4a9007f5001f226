"""identity's query tables, written in the same transaction as the events they reflect."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from kith.identity.domain import (
    AccountRegistered,
    ProfileChanged,
    SessionRefreshed,
    SessionStarted,
    username_taken,
)

USERNAME_INDEX = "accounts_username_key"


@dataclass(frozen=True)
class Profile:
    id: uuid.UUID
    username: str
    display_name: str
    bio: str
    created_at_ms: int


_PROFILE = "SELECT user_id, username, display_name, bio, created_at_ms FROM accounts"


# -- accounts ----------------------------------------------------------------------------------

def add_account(conn: psycopg.Connection, event: AccountRegistered) -> None:
    """Raises ``username_taken`` if the name is in use (also by a concurrent registration)."""
    try:
        conn.execute(
            "INSERT INTO accounts (user_id, username, display_name, bio, password_hash,"
            " created_at_ms) VALUES (%s, %s, %s, %s, %s, %s)",
            (event.user_id, event.username, event.display_name, event.bio,
             event.password_hash, event.registered_at_ms))
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == USERNAME_INDEX:
            raise username_taken() from None
        raise


def change_profile(conn: psycopg.Connection, event: ProfileChanged) -> None:
    conn.execute("UPDATE accounts SET display_name = coalesce(%s, display_name),"
                 " bio = coalesce(%s, bio) WHERE user_id = %s",
                 (event.display_name, event.bio, event.user_id))


def change_password(conn: psycopg.Connection, user_id: uuid.UUID, password_hash: str) -> None:
    conn.execute("UPDATE accounts SET password_hash = %s WHERE user_id = %s",
                 (password_hash, user_id))


def remove_account(conn: psycopg.Connection, user_id: uuid.UUID) -> None:
    """Forget every personal field of the user (and free the username)."""
    conn.execute("DELETE FROM accounts WHERE user_id = %s", (user_id,))


def username_in_use(conn: psycopg.Connection, username: str) -> bool:
    return conn.execute("SELECT 1 FROM accounts WHERE username = %s",
                        (username,)).fetchone() is not None


def account_exists(conn: psycopg.Connection, user_id: uuid.UUID) -> bool:
    return conn.execute("SELECT 1 FROM accounts WHERE user_id = %s",
                        (user_id,)).fetchone() is not None


def credentials(conn: psycopg.Connection, username: str) -> tuple[uuid.UUID, str] | None:
    """``(user_id, password_hash)`` of a live account."""
    row = conn.execute("SELECT user_id, password_hash FROM accounts WHERE username = %s",
                       (username,)).fetchone()
    return (row[0], row[1]) if row else None


def profile(conn: psycopg.Connection, user_id: uuid.UUID) -> Profile | None:
    row = conn.execute(_PROFILE + " WHERE user_id = %s", (user_id,)).fetchone()
    return Profile(*row) if row else None


def profiles(conn: psycopg.Connection, user_ids: Sequence[uuid.UUID]) -> list[Profile]:
    rows = conn.execute(_PROFILE + " WHERE user_id = ANY(%s) ORDER BY user_id",
                        (list(user_ids),)).fetchall()
    return [Profile(*row) for row in rows]


# -- sessions ----------------------------------------------------------------------------------

def add_session(conn: psycopg.Connection, event: SessionStarted) -> None:
    conn.execute("INSERT INTO sessions (session_id, user_id, expires_at_ms) VALUES (%s, %s, %s)",
                 (event.session_id, event.user_id, event.expires_at_ms))
    conn.execute("INSERT INTO refresh_tokens (token_sha256, session_id) VALUES (%s, %s)",
                 (event.refresh_token_sha256, event.session_id))


def rotate_token(conn: psycopg.Connection, event: SessionRefreshed) -> None:
    conn.execute("UPDATE sessions SET expires_at_ms = %s WHERE session_id = %s",
                 (event.expires_at_ms, event.session_id))
    conn.execute("INSERT INTO refresh_tokens (token_sha256, session_id) VALUES (%s, %s)",
                 (event.refresh_token_sha256, event.session_id))


def revoke_session(conn: psycopg.Connection, session_id: uuid.UUID, revoked_at_ms: int) -> None:
    conn.execute("UPDATE sessions SET revoked_at_ms = %s WHERE session_id = %s",
                 (revoked_at_ms, session_id))


def session_of_token(conn: psycopg.Connection, token_sha256: str) -> uuid.UUID | None:
    row = conn.execute("SELECT session_id FROM refresh_tokens WHERE token_sha256 = %s",
                       (token_sha256,)).fetchone()
    return row[0] if row else None


def active_sessions(conn: psycopg.Connection, user_id: uuid.UUID) -> list[uuid.UUID]:
    return [r[0] for r in conn.execute(
        "SELECT session_id FROM sessions WHERE user_id = %s AND revoked_at_ms IS NULL"
        " ORDER BY session_id", (user_id,))]


def session_is_live(conn: psycopg.Connection, session_id: uuid.UUID,
                    user_id: uuid.UUID) -> bool:
    """The family is not revoked and its account still exists."""
    return conn.execute(
        "SELECT 1 FROM sessions s JOIN accounts a USING (user_id)"
        " WHERE s.session_id = %s AND s.user_id = %s AND s.revoked_at_ms IS NULL",
        (session_id, user_id)).fetchone() is not None
