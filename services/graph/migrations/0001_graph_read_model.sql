-- The graph's inline read model: written in the same transaction as the events it reflects.

CREATE TABLE IF NOT EXISTS niches (
    niche_id      uuid        PRIMARY KEY,
    name          text        NOT NULL,
    kind          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    member_cap    integer     NOT NULL,
    member_count  integer     NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    owner_id      uuid        NOT NULL,
    created_at    timestamptz NOT NULL,
    archived      boolean     NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS memberships (
    niche_id   uuid        NOT NULL REFERENCES niches (niche_id),
    user_id    uuid        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at  timestamptz NOT NULL,
    PRIMARY KEY (niche_id, user_id)
);
CREATE INDEX IF NOT EXISTS memberships_user ON memberships (user_id, niche_id);

-- Where an invite code leads: codes are looked up by their SHA-256 only.
CREATE TABLE IF NOT EXISTS invites (
    code_sha256  text        PRIMARY KEY,
    niche_id     uuid        NOT NULL REFERENCES niches (niche_id),
    invite_id    uuid        NOT NULL,
    expires_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS blocks (
    blocker_id  uuid        NOT NULL,
    blocked_id  uuid        NOT NULL,
    since       timestamptz NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX IF NOT EXISTS blocks_blocked ON blocks (blocked_id, blocker_id);
