-- Records a projection could not use (no Kith envelope, or a payload that does not
-- decode), kept with the error in the same transaction that moves past them.
CREATE TABLE IF NOT EXISTS projection_dead_letters (
    projection   text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    error        text        NOT NULL,
    key          bytea,
    payload      bytea,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition, "offset")
);
