"""The graph's query tables (``niches``, ``memberships``, ``invites``, ``blocks``).

:func:`record` applies decided events to the tables inside the command's
transaction, just before the append, so the tables always match the event
store. The query functions read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from kith.graph.domain.rules import Role
from kith.graph.events import (
    GraphEvent,
    InviteCreated,
    InviteRevoked,
    MemberJoined,
    MemberLeft,
    MemberRoleChanged,
    NicheArchived,
    NicheCreated,
    UserBlocked,
    UserUnblocked,
)


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


@dataclass(frozen=True)
class NicheRow:
    niche_id: str
    name: str
    kind: str
    description: str
    member_cap: int
    member_count: int
    created_at_ms: int
    archived: bool
    my_role: Role | None = None


@dataclass(frozen=True)
class MemberRow:
    user_id: str
    role: Role
    joined_at_ms: int


# -- writing ----------------------------------------------------------------------------------

# Keys a concurrent command's rows can collide on (it recorded first: decide again).
UNIQUE_KEYS = ("niches_pkey", "memberships_pkey", "invites_pkey", "blocks_pkey",
               "member_profiles_pkey", "member_skills_pkey", "skill_endorsements_pkey")


def record(conn: psycopg.Connection, events: Sequence[GraphEvent]) -> None:
    """Reflect ``events`` in the tables (call inside the appending transaction)."""
    for event in events:
        match event:
            case NicheCreated():
                conn.execute(
                    "INSERT INTO niches (niche_id, name, kind, description, member_cap, owner_id,"
                    " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (event.niche_id, event.name, event.kind, event.description,
                     event.member_cap, event.owner_id, _ts(event.created_at_ms)))
            case MemberJoined():
                conn.execute(
                    "INSERT INTO memberships (niche_id, user_id, role, joined_at)"
                    " VALUES (%s, %s, %s, %s)",
                    (event.niche_id, event.user_id, event.role, _ts(event.joined_at_ms)))
                conn.execute("UPDATE niches SET member_count = member_count + 1"
                             " WHERE niche_id = %s", (event.niche_id,))
            case MemberLeft():
                conn.execute("DELETE FROM memberships WHERE niche_id = %s AND user_id = %s",
                             (event.niche_id, event.user_id))
                conn.execute("UPDATE niches SET member_count = member_count - 1"
                             " WHERE niche_id = %s", (event.niche_id,))
            case MemberRoleChanged():
                conn.execute("UPDATE memberships SET role = %s WHERE niche_id = %s"
                             " AND user_id = %s", (event.role, event.niche_id, event.user_id))
                if event.role == Role.OWNER:
                    conn.execute("UPDATE niches SET owner_id = %s WHERE niche_id = %s",
                                 (event.user_id, event.niche_id))
            case InviteCreated():
                conn.execute(
                    "INSERT INTO invites (code_sha256, niche_id, invite_id, expires_at)"
                    " VALUES (%s, %s, %s, %s)",
                    (event.code_sha256, event.niche_id, event.invite_id,
                     _ts(event.expires_at_ms)))
            case InviteRevoked():
                conn.execute("DELETE FROM invites WHERE invite_id = %s", (event.invite_id,))
            case NicheArchived():  # its name and description go with it (niche_keys)
                conn.execute("UPDATE niches SET archived = true, name = '', description = ''"
                             " WHERE niche_id = %s", (event.niche_id,))
                conn.execute("DELETE FROM invites WHERE niche_id = %s", (event.niche_id,))
            case UserBlocked():
                conn.execute(
                    "INSERT INTO blocks (blocker_id, blocked_id, since) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (event.blocker_id, event.blocked_id, _ts(event.at_ms)))
            case UserUnblocked():
                conn.execute("DELETE FROM blocks WHERE blocker_id = %s AND blocked_id = %s",
                             (event.blocker_id, event.blocked_id))


# -- reading ----------------------------------------------------------------------------------

_NICHE_COLUMNS = ("n.niche_id::text, n.name, n.kind, n.description, n.member_cap,"
                  " n.member_count, n.created_at, n.archived, m.role")


def _niche(row: tuple) -> NicheRow:
    niche_id, name, kind, description, member_cap, member_count, created_at, archived, role = row
    return NicheRow(niche_id, name, kind, description, member_cap, member_count,
                    _ms(created_at), archived, Role(role) if role else None)


def invite_niche(conn: psycopg.Connection, code_sha256: str) -> str | None:
    """The niche an invite code leads to, if the code was ever issued (and not archived)."""
    row = conn.execute("SELECT niche_id::text FROM invites WHERE code_sha256 = %s",
                       (code_sha256,)).fetchone()
    return row[0] if row else None


def niche_for_member(conn: psycopg.Connection, niche_id: str, user_id: str) -> NicheRow | None:
    """The niche as ``user_id`` sees it, or None unless they are a member."""
    row = conn.execute(
        f"SELECT {_NICHE_COLUMNS} FROM niches n JOIN memberships m USING (niche_id)"
        " WHERE n.niche_id = %s AND m.user_id = %s", (niche_id, user_id)).fetchone()
    return _niche(row) if row else None


def niches_of(conn: psycopg.Connection, user_id: str) -> list[NicheRow]:
    """Every niche ``user_id`` belongs to, in the order they joined."""
    rows = conn.execute(
        f"SELECT {_NICHE_COLUMNS} FROM niches n JOIN memberships m USING (niche_id)"
        " WHERE m.user_id = %s ORDER BY m.joined_at, n.niche_id", (user_id,)).fetchall()
    return [_niche(r) for r in rows]


def members_of(conn: psycopg.Connection, niche_id: str) -> list[MemberRow]:
    """The members of a niche, longest-standing first."""
    rows = conn.execute(
        "SELECT user_id::text, role, joined_at FROM memberships WHERE niche_id = %s"
        " ORDER BY joined_at, user_id", (niche_id,)).fetchall()
    return [MemberRow(u, Role(r), _ms(j)) for u, r, j in rows]


def role_of(conn: psycopg.Connection, niche_id: str, user_id: str) -> Role | None:
    row = conn.execute("SELECT role FROM memberships WHERE niche_id = %s AND user_id = %s",
                       (niche_id, user_id)).fetchone()
    return Role(row[0]) if row else None


def membership_of(conn: psycopg.Connection, niche_id: str,
                  user_id: str) -> tuple[Role, str] | None:
    """The user's role in the niche and the niche's kind; None unless a member."""
    row = conn.execute("SELECT m.role, n.kind FROM memberships m JOIN niches n USING (niche_id)"
                       " WHERE m.niche_id = %s AND m.user_id = %s", (niche_id, user_id)).fetchone()
    return (Role(row[0]), row[1]) if row else None


def niche_ids_of(conn: psycopg.Connection, user_id: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT niche_id::text FROM memberships WHERE user_id = %s ORDER BY niche_id",
        (user_id,))]


def sharing_niche(conn: psycopg.Connection, user_id: str, others: Sequence[str]) -> set[str]:
    """Which of ``others`` share at least one niche with ``user_id``."""
    rows = conn.execute(
        "SELECT DISTINCT theirs.user_id::text FROM memberships mine"
        " JOIN memberships theirs ON theirs.niche_id = mine.niche_id"
        " WHERE mine.user_id = %s AND theirs.user_id = ANY(%s::uuid[])",
        (user_id, list(others))).fetchall()
    return {r[0] for r in rows}


def blocked_by(conn: psycopg.Connection, user_id: str) -> list[str]:
    """Whom ``user_id`` blocks, oldest block first."""
    return [r[0] for r in conn.execute(
        "SELECT blocked_id::text FROM blocks WHERE blocker_id = %s ORDER BY since, blocked_id",
        (user_id,))]


def blocked_among(conn: psycopg.Connection, user_id: str, others: Sequence[str]) -> set[str]:
    """Which of ``others`` block ``user_id`` or are blocked by them."""
    rows = conn.execute(
        "SELECT blocked_id::text FROM blocks WHERE blocker_id = %s AND blocked_id = ANY(%s::uuid[])"
        " UNION SELECT blocker_id::text FROM blocks"
        " WHERE blocked_id = %s AND blocker_id = ANY(%s::uuid[])",
        (user_id, list(others), user_id, list(others))).fetchall()
    return {r[0] for r in rows}


# -- deleted accounts -------------------------------------------------------------------------

ACCOUNT_LOCK_SPACE = 0x67726168  # "grah": advisory locks (space, hashtext(user id))


def lock_account(conn: psycopg.Connection, user_id: str, exclusive: bool) -> None:
    """Order a user's own commands (shared) against the erasure of their account (exclusive)."""
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(f"SELECT {fn}(%s, hashtext(%s))", (ACCOUNT_LOCK_SPACE, user_id))


def mark_account_deleted(conn: psycopg.Connection, user_id: str) -> None:
    conn.execute("INSERT INTO deleted_accounts (user_id) VALUES (%s) ON CONFLICT DO NOTHING",
                 (user_id,))


def account_deleted(conn: psycopg.Connection, user_id: str) -> bool:
    return conn.execute("SELECT 1 FROM deleted_accounts WHERE user_id = %s",
                        (user_id,)).fetchone() is not None
