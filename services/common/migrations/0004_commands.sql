-- Commands run under a command id (the gateway derives one from an Idempotency-Key): the
-- result each recorded, in the same transaction as its events, so a repeat of the command
-- returns that result instead of performing it again (kith.common.commands).
CREATE TABLE IF NOT EXISTS commands (
    command_id  uuid        NOT NULL,
    actor_id    text        NOT NULL,
    name        text        NOT NULL,
    result      jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commands_pkey PRIMARY KEY (command_id, actor_id, name)
);
CREATE INDEX IF NOT EXISTS commands_recorded_at ON commands (recorded_at);
