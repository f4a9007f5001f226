-- Messaging's own tables. conversations + conversation_members are the
-- snapshot of each conversation aggregate (written in the same transaction as
-- every append; the conversations row is the per-conversation lock that makes
-- message seqs gap-free). messages is the message read model and the
-- idempotency index of client message ids. Title and text are stored as
-- ciphertext under the conversation key, as in the events.

CREATE TABLE IF NOT EXISTS conversations (
    id             uuid    PRIMARY KEY,
    created_by     uuid    NOT NULL,
    title          text,
    created_at_ms  bigint  NOT NULL,
    version        integer NOT NULL,          -- stream version of the conversation
    last_seq       bigint  NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS conversation_members (
    conversation_id  uuid     NOT NULL REFERENCES conversations (id),
    user_id          uuid     NOT NULL,
    position         smallint NOT NULL,       -- join order, the creator first
    read_seq         bigint   NOT NULL DEFAULT 0,
    delivered_seq    bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE IF NOT EXISTS messages (
    conversation_id    uuid   NOT NULL,
    seq                bigint NOT NULL,
    message_id         uuid   NOT NULL UNIQUE,
    sender_id          uuid   NOT NULL,
    client_message_id  text   NOT NULL,
    text               text   NOT NULL,
    sent_at_ms         bigint NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, client_message_id)
);

-- One AES-256 data key per conversation; deleting a row shreds that
-- conversation's titles and texts everywhere (events, topic, read models).
CREATE TABLE IF NOT EXISTS conversation_keys (
    conversation_id  uuid        PRIMARY KEY,
    key              bytea       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- The inbox projection, fed from messaging.events.v1: one row per member and
-- conversation with the last message (ciphertext) and the member's read mark.
CREATE TABLE IF NOT EXISTS inbox (
    user_id                 uuid   NOT NULL,
    conversation_id         uuid   NOT NULL,
    title                   text,
    member_ids              text[] NOT NULL,
    last_seq                bigint NOT NULL DEFAULT 0,
    read_seq                bigint NOT NULL DEFAULT 0,
    last_message_id         uuid,
    last_sender_id          uuid,
    last_client_message_id  text,
    last_text               text,
    last_sent_at_ms         bigint,
    updated_at_ms           bigint NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX IF NOT EXISTS inbox_recent ON inbox (user_id, updated_at_ms DESC, conversation_id DESC);
CREATE INDEX IF NOT EXISTS inbox_by_conversation ON inbox (conversation_id);
