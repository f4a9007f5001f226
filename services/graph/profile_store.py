"""Profile read model and keys: the tables behind personas, skills and the skill directory.

:func:`record` reflects decided profile events inside the appending transaction;
the queries read them, always joined with live memberships (people who left a
niche are never shown) and never across a block. The member's data key seals
their profile and endorsed skills in the event log (:func:`seal`, :func:`unseal`);
:func:`erase_user` destroys it with the account.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import psycopg

from kith.common import crypto, cursors
from kith.common.errors import InvalidArgument
from kith.graph.domain.profile import Profile, profile_stream
from kith.graph.events import (
    MemberProfileChanged,
    ProfileEvent,
    SkillEndorsed,
    SkillEndorsementWithdrawn,
)

# -- keys and sealing -------------------------------------------------------------------------

PROFILE_KEYS = crypto.KeyTable("graph", "profile_keys")


def _subject(event: ProfileEvent) -> str:
    return str(profile_stream(event.niche_id, event.user_id))


def seal(event: ProfileEvent, key: bytes) -> ProfileEvent:
    """The event with the member's personal data encrypted under their key."""
    if isinstance(event, MemberProfileChanged):
        return replace(event, profile=crypto.encrypt(key, _subject(event), event.profile))
    return replace(event, skill=crypto.encrypt(key, _subject(event), event.skill))


def unseal(event: ProfileEvent, key: bytes | None) -> ProfileEvent:
    """Readable again, or emptied when the member's key was destroyed."""
    value = event.profile if isinstance(event, MemberProfileChanged) else event.skill
    if not crypto.is_encrypted(value):
        return event
    try:
        plain = crypto.decrypt(key, _subject(event), value)
    except crypto.ShreddedError:
        plain = ""
    if isinstance(event, MemberProfileChanged):
        return replace(event, profile=plain)
    return replace(event, skill=plain)


# -- writing ----------------------------------------------------------------------------------

def record(conn: psycopg.Connection, events: Sequence[ProfileEvent]) -> None:
    for event in events:
        match event:
            case MemberProfileChanged():
                _profile_changed(conn, event)
            case SkillEndorsed():
                conn.execute("INSERT INTO skill_endorsements (niche_id, user_id, skill,"
                             " endorser_id) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                             (event.niche_id, event.user_id, event.skill, event.endorser_id))
                _recount(conn, event.niche_id, event.user_id)
            case SkillEndorsementWithdrawn():
                conn.execute("DELETE FROM skill_endorsements WHERE niche_id = %s AND user_id = %s"
                             " AND skill = %s AND endorser_id = %s",
                             (event.niche_id, event.user_id, event.skill, event.endorser_id))
                _recount(conn, event.niche_id, event.user_id)


def _profile_changed(conn: psycopg.Connection, e: MemberProfileChanged) -> None:
    p = Profile.from_json(e.profile)
    conn.execute(
        "INSERT INTO member_profiles (niche_id, user_id, display_name, headline, birthday,"
        " reading_title, reading_author) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (niche_id, user_id) DO UPDATE SET display_name = EXCLUDED.display_name,"
        " headline = EXCLUDED.headline, birthday = EXCLUDED.birthday,"
        " reading_title = EXCLUDED.reading_title, reading_author = EXCLUDED.reading_author",
        (e.niche_id, e.user_id, p.display_name, p.headline, p.birthday, p.reading_title,
         p.reading_author))
    names = [s.name for s in p.skills]
    conn.execute("DELETE FROM member_skills WHERE niche_id = %s AND user_id = %s"
                 " AND NOT name = ANY(%s::text[])", (e.niche_id, e.user_id, names))
    for skill in p.skills:
        conn.execute("INSERT INTO member_skills (niche_id, user_id, name, level)"
                     " VALUES (%s, %s, %s, %s) ON CONFLICT (niche_id, user_id, name)"
                     " DO UPDATE SET level = EXCLUDED.level",
                     (e.niche_id, e.user_id, skill.name, skill.level))
    _recount(conn, e.niche_id, e.user_id)


def _recount(conn: psycopg.Connection, niche_id: str, user_id: str) -> None:
    conn.execute(
        "UPDATE member_skills s SET endorsements = (SELECT count(*) FROM skill_endorsements e"
        "  WHERE e.niche_id = s.niche_id AND e.user_id = s.user_id AND e.skill = s.name)"
        " WHERE s.niche_id = %s AND s.user_id = %s", (niche_id, user_id))


def erase_user(conn: psycopg.Connection, user_id: str) -> None:
    """A deleted account: its profiles, skills and endorsements leave every view, its key
    is destroyed (what the log holds of them becomes unreadable)."""
    for table in ("member_profiles", "member_skills", "skill_endorsements"):
        conn.execute(f"DELETE FROM {table} WHERE user_id = %s", (user_id,))
    PROFILE_KEYS.destroy(conn, user_id)


def endorsed_by(conn: psycopg.Connection, endorser_id: str) -> list[tuple[str, str]]:
    """``(niche_id, user_id)`` of every profile ``endorser_id`` endorsed a skill of."""
    return [(str(n), str(u)) for n, u in conn.execute(
        "SELECT DISTINCT niche_id, user_id FROM skill_endorsements WHERE endorser_id = %s"
        " ORDER BY niche_id, user_id", (endorser_id,))]


# -- reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SkillRow:
    name: str
    level: str
    endorsements: int


@dataclass(frozen=True)
class ProfileRow:
    niche_id: str
    user_id: str
    display_name: str
    headline: str
    birthday: str
    reading_title: str
    reading_author: str
    skills: list[SkillRow]
    role: str = ""
    joined_at_ms: int = 0


def _skills(conn: psycopg.Connection, niche_id: str,
            user_ids: Collection[str]) -> dict[str, list[SkillRow]]:
    found: dict[str, list[SkillRow]] = {}
    for user_id, name, level, n in conn.execute(
            "SELECT user_id::text, name, level, endorsements FROM member_skills"
            " WHERE niche_id = %s AND user_id = ANY(%s::uuid[])"
            " ORDER BY endorsements DESC, name", (niche_id, list(user_ids))):
        found.setdefault(user_id, []).append(SkillRow(name, level, n))
    return found


def profile(conn: psycopg.Connection, niche_id: str, user_id: str) -> ProfileRow:
    row = conn.execute(
        "SELECT display_name, headline, birthday, reading_title, reading_author"
        " FROM member_profiles WHERE niche_id = %s AND user_id = %s",
        (niche_id, user_id)).fetchone() or ("", "", "", "", "")
    display_name, headline, birthday, reading_title, reading_author = row
    return ProfileRow(niche_id, user_id, display_name, headline, birthday, reading_title,
                      reading_author, skills=_skills(conn, niche_id, [user_id]).get(user_id, []))


def member_profiles(conn: psycopg.Connection, niche_id: str, skill_prefix: str
                    ) -> list[ProfileRow]:
    """The niche's members with their profiles, longest-standing first; with a prefix,
    only those with a skill starting with it."""
    rows = conn.execute(
        "SELECT m.user_id::text, coalesce(p.display_name, ''), coalesce(p.headline, ''),"
        " coalesce(p.birthday, ''), coalesce(p.reading_title, ''),"
        " coalesce(p.reading_author, ''), m.role, m.joined_at"
        " FROM memberships m LEFT JOIN member_profiles p"
        "  ON p.niche_id = m.niche_id AND p.user_id = m.user_id"
        " WHERE m.niche_id = %(n)s AND (%(q)s = '' OR EXISTS (SELECT 1 FROM member_skills s"
        "  WHERE s.niche_id = m.niche_id AND s.user_id = m.user_id"
        "  AND s.name LIKE %(like)s))"
        " ORDER BY m.joined_at, m.user_id",
        {"n": niche_id, "q": skill_prefix, "like": like_prefix(skill_prefix)}).fetchall()
    skills = _skills(conn, niche_id, [r[0] for r in rows])
    return [ProfileRow(niche_id, r[0], r[1], r[2], r[3], r[4], r[5], skills.get(r[0], []),
                       r[6], int(r[7].timestamp() * 1000)) for r in rows]


def personas(conn: psycopg.Connection, actor_id: str,
             keys: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """``(niche_id, user_id, display_name)`` among ``keys`` that have a persona, in niches
    ``actor_id`` belongs to, of people still members there."""
    if not keys:
        return []
    rows = conn.execute(
        "SELECT p.niche_id::text, p.user_id::text, p.display_name FROM member_profiles p"
        " JOIN unnest(%(n)s::uuid[], %(u)s::uuid[]) AS k(niche_id, user_id)"
        "  ON k.niche_id = p.niche_id AND k.user_id = p.user_id"
        " JOIN memberships mine ON mine.niche_id = p.niche_id AND mine.user_id = %(a)s"
        " JOIN memberships theirs ON theirs.niche_id = p.niche_id AND theirs.user_id = p.user_id"
        " WHERE p.display_name <> ''",
        {"n": [k[0] for k in keys], "u": [k[1] for k in keys], "a": actor_id}).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


_NOT_BLOCKED = (
    " NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = %(a)s AND b.blocked_id = {u})"
    "  OR (b.blocker_id = {u} AND b.blocked_id = %(a)s))")


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with ``prefix`` (wildcards escaped)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class DirectoryRow:
    user_id: str
    display_name: str
    niche_id: str
    niche_name: str
    skill: str
    level: str
    endorsements: int

    def position(self) -> list:
        return [self.endorsements, self.skill, self.niche_id, self.user_id]


def encode_position(position: list) -> str:
    return cursors.encode(*position)


def decode_position(cursor: str) -> list | None:
    """The keyset position a cursor stands for; None if it is not one of ours."""
    try:
        return list(cursors.decode(cursor, int, str, str, str))
    except InvalidArgument:
        return None


def search_skills(conn: psycopg.Connection, actor_id: str, prefix: str, kinds: Sequence[str],
                  after: list | None, limit: int) -> list[DirectoryRow]:
    """Skills starting with ``prefix`` of people sharing a niche of ``kinds`` with the actor,
    most endorsed first; never the actor, never across a block."""
    params: dict = {"a": actor_id, "kinds": list(kinds), "like": like_prefix(prefix),
                    "limit": limit}
    keyset = ""
    if after is not None:
        params.update(e=after[0], s=after[1], n=after[2], u=after[3])
        keyset = (" AND (s.endorsements < %(e)s OR (s.endorsements = %(e)s AND"
                  " (s.name, s.niche_id, s.user_id) > (%(s)s, %(n)s::uuid, %(u)s::uuid)))")
    rows = conn.execute(
        "SELECT s.user_id::text, coalesce(p.display_name, ''), s.niche_id::text, n.name,"
        " s.name, s.level, s.endorsements"
        " FROM memberships mine"
        " JOIN niches n ON n.niche_id = mine.niche_id AND n.kind = ANY(%(kinds)s)"
        " JOIN member_skills s ON s.niche_id = mine.niche_id AND s.name LIKE %(like)s"
        " JOIN memberships theirs ON theirs.niche_id = s.niche_id AND theirs.user_id = s.user_id"
        " LEFT JOIN member_profiles p ON p.niche_id = s.niche_id AND p.user_id = s.user_id"
        " WHERE mine.user_id = %(a)s AND s.user_id <> %(a)s AND"
        + _NOT_BLOCKED.format(u="s.user_id") + keyset +
        " ORDER BY s.endorsements DESC, s.name, s.niche_id, s.user_id LIMIT %(limit)s",
        params).fetchall()
    return [DirectoryRow(*r) for r in rows]


@dataclass(frozen=True)
class BirthdayRow:
    user_id: str
    display_name: str
    niche_id: str
    niche_name: str
    birthday: str


def birthdays(conn: psycopg.Connection, actor_id: str, kinds: Sequence[str]) -> list[BirthdayRow]:
    """Birthdays in member profiles of the actor's niches of ``kinds``, never across a block."""
    rows = conn.execute(
        "SELECT p.user_id::text, p.display_name, p.niche_id::text, n.name, p.birthday"
        " FROM memberships mine"
        " JOIN niches n ON n.niche_id = mine.niche_id AND n.kind = ANY(%(kinds)s)"
        " JOIN member_profiles p ON p.niche_id = mine.niche_id AND p.birthday <> ''"
        " JOIN memberships theirs ON theirs.niche_id = p.niche_id AND theirs.user_id = p.user_id"
        " WHERE mine.user_id = %(a)s AND" + _NOT_BLOCKED.format(u="p.user_id") +
        " ORDER BY p.birthday, p.user_id", {"a": actor_id, "kinds": list(kinds)}).fetchall()
    return [BirthdayRow(*r) for r in rows]
