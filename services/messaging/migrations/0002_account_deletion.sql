-- Message texts are sealed under a key per (conversation, sender): deleting an
-- account destroys that user's keys, which shreds exactly their texts in the
-- events, on the topic and in every export (titles stay under conversation_keys).
CREATE TABLE IF NOT EXISTS sender_keys (
    conversation_id  uuid  NOT NULL,
    user_id          uuid  NOT NULL,
    key              bytea NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX IF NOT EXISTS sender_keys_by_user ON sender_keys (user_id);
CREATE INDEX IF NOT EXISTS messages_by_sender ON messages (sender_id);
CREATE INDEX IF NOT EXISTS conversation_members_by_user ON conversation_members (user_id);

-- Accounts identity reported deleted (identity.events.v1 AccountDeleted): never
-- added to a conversation again.
CREATE TABLE IF NOT EXISTS deleted_accounts (
    user_id        uuid   PRIMARY KEY,
    deleted_at_ms  bigint NOT NULL
);
