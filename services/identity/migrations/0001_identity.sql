-- identity's own tables (the event store tables come from kith.common).

-- One data key per user. Deleting the row is crypto-shredding: every personal
-- field of the user, in every event and every copy of the log, becomes unreadable.
CREATE TABLE data_keys (
    user_id     uuid PRIMARY KEY,
    data_key    bytea NOT NULL CHECK (length(data_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Live accounts (a deleted account's row is removed). The unique index on
-- username is written in the same transaction as AccountRegistered: it is
-- what makes concurrent registrations of one name admit exactly one.
CREATE TABLE accounts (
    user_id        uuid PRIMARY KEY,
    username       text   NOT NULL,
    display_name   text   NOT NULL,
    bio            text   NOT NULL DEFAULT '',
    password_hash  text   NOT NULL,
    created_at_ms  bigint NOT NULL
);
CREATE UNIQUE INDEX accounts_username_key ON accounts (username);

-- Session families.
CREATE TABLE sessions (
    session_id     uuid   PRIMARY KEY,
    user_id        uuid   NOT NULL,
    expires_at_ms  bigint NOT NULL,
    revoked_at_ms  bigint
);
CREATE INDEX sessions_active_by_user ON sessions (user_id) WHERE revoked_at_ms IS NULL;

-- Every refresh token ever issued (as SHA-256) → its family, current or spent:
-- a spent one presented again is found here and revokes the family.
CREATE TABLE refresh_tokens (
    token_sha256  text PRIMARY KEY,
    session_id    uuid NOT NULL REFERENCES sessions ON DELETE CASCADE
);
