-- Media's own tables. `media` is the snapshot of each photo's stream (written
-- in the same transaction as every append); `media_variants` and
-- `media_chunks` hold the bytes of the three sizes, each chunk sealed with
-- AES-256-GCM under the uploader's key (`media_keys`). Deleting a key makes
-- every stored byte of that uploader's photos unreadable.

CREATE TABLE IF NOT EXISTS media_keys (
    user_id     uuid        PRIMARY KEY,
    key         bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS media (
    id               uuid    PRIMARY KEY,
    uploader_id      uuid    NOT NULL,
    content_type     text    NOT NULL,
    width            integer NOT NULL,
    height           integer NOT NULL,
    bytes            bigint  NOT NULL,
    uploaded_at_ms   bigint  NOT NULL,
    version          integer NOT NULL,      -- stream version of the photo
    -- pending: uploaded, not attached; attached; detached: carrier deleted; purged
    state            text    NOT NULL,
    carrier_kind     text,
    carrier_id       uuid,
    parent_id        uuid,
    position         integer,
    claim_id         uuid,                  -- a live claim (Claim → Attach/Release)
    claimed_until_ms bigint
);
CREATE INDEX IF NOT EXISTS media_by_uploader ON media (uploader_id);
CREATE INDEX IF NOT EXISTS media_by_carrier ON media (carrier_id) WHERE carrier_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS media_by_parent ON media (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS media_pending ON media (uploaded_at_ms) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS media_by_claim ON media (claim_id) WHERE claim_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS media_variants (
    media_id      uuid    NOT NULL,
    size          text    NOT NULL,         -- original, display, thumb
    content_type  text    NOT NULL,
    width         integer NOT NULL,
    height        integer NOT NULL,
    length        bigint  NOT NULL,         -- plaintext bytes
    etag          text    NOT NULL,
    chunks        integer NOT NULL,
    PRIMARY KEY (media_id, size)
);

CREATE TABLE IF NOT EXISTS media_chunks (
    media_id  uuid    NOT NULL,
    size      text    NOT NULL,
    seq       integer NOT NULL,
    sealed    bytea   NOT NULL,             -- nonce (12) || AES-GCM(ciphertext + tag)
    PRIMARY KEY (media_id, size, seq)
);

-- Accounts identity reported deleted: an upload racing the deletion is refused.
CREATE TABLE IF NOT EXISTS deleted_accounts (
    user_id        uuid   PRIMARY KEY,
    deleted_at_ms  bigint NOT NULL
);
