-- Accounts identity reported deleted: they change nothing in the graph any more.
CREATE TABLE deleted_accounts (
    user_id     uuid        PRIMARY KEY,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
