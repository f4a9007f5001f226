-- The event store, the relay's checkpoint and the projection bookkeeping that
-- every Kith service database carries.

CREATE TABLE IF NOT EXISTS events (
    position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id    uuid        NOT NULL,
    version      integer     NOT NULL CHECK (version > 0),
    event_id     uuid        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    payload      bytea       NOT NULL,
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version)
);

-- The outbox: positions recorded but not yet acknowledged by Kafka. The append
-- inserts here in its own transaction; the relay deletes after the broker acks.
-- Nothing is skipped even when positions commit out of order: an event stays
-- here until it is published, however late its transaction commits.
CREATE TABLE IF NOT EXISTS outbox (
    position  bigint PRIMARY KEY
);

-- Kafka offsets of each projection, written in the same transaction as its effects.
CREATE TABLE IF NOT EXISTS projection_offsets (
    projection   text    NOT NULL,
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint  NOT NULL,
    PRIMARY KEY (projection, topic, partition)
);

-- The last stream version each projection applied: makes redelivered events no-ops.
CREATE TABLE IF NOT EXISTS projection_streams (
    projection  text    NOT NULL,
    stream_id   uuid    NOT NULL,
    version     integer NOT NULL,
    PRIMARY KEY (projection, stream_id)
);
