-- Stream tickets already redeemed (POST /v1/stream/tickets → GET /v1/stream?ticket=).
-- A ticket is sealed and self-describing; this table only makes it single use
-- across every gateway process. Rows are useless after expires_at and are pruned.
CREATE UNLOGGED TABLE stream_tickets_spent (
    digest     bytea       NOT NULL PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX stream_tickets_spent_expires ON stream_tickets_spent (expires_at);
