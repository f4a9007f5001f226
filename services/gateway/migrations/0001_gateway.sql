-- Idempotency keys: one row per (caller, key). A row with status NULL is a claim
-- taken by the request being executed; the response (body sealed with AES-GCM,
-- since it may hold tokens) is filled in when it finishes.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    fingerprint  bytea       NOT NULL,
    status       int,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Fixed-window rate-limit counters shared by every gateway process. UNLOGGED:
-- losing counters in a crash is harmless and the writes stay cheap.
CREATE UNLOGGED TABLE rate_limits (
    key        text             NOT NULL PRIMARY KEY,
    count      int              NOT NULL,
    expires_at double precision NOT NULL  -- epoch seconds
);
