-- The post service's read model, written in the same transaction as each append.

CREATE TABLE posts (
    id             uuid        PRIMARY KEY,
    niche_id       uuid        NOT NULL,
    author_id      uuid        NOT NULL,
    text           text        NOT NULL,  -- emptied when the post is deleted
    created_at     timestamptz NOT NULL,
    edited_at      timestamptz,
    deleted_at     timestamptz,
    comment_count  integer     NOT NULL DEFAULT 0,
    version        integer     NOT NULL   -- the stream version this row reflects
);
-- Account deletion finds a user's remaining posts (the other indexes below serve it too).
CREATE INDEX posts_live_by_author ON posts (author_id) WHERE deleted_at IS NULL;

-- seq is the comment's version in its post's stream: append order, a stable keyset.
CREATE TABLE comments (
    post_id     uuid        NOT NULL,
    seq         integer     NOT NULL,
    id          uuid        NOT NULL UNIQUE,
    author_id   uuid        NOT NULL,
    text        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (post_id, seq)
);
-- Account deletion finds a user's comments and reactions.
CREATE INDEX comments_by_author ON comments (author_id);

CREATE TABLE reactions (
    post_id  uuid NOT NULL,
    user_id  uuid NOT NULL,
    kind     text NOT NULL,
    PRIMARY KEY (post_id, user_id, kind)
);
CREATE INDEX reactions_by_user ON reactions (user_id);

-- Kept beside the reactions so that hydrating a feed page never counts rows.
CREATE TABLE reaction_counts (
    post_id  uuid    NOT NULL,
    kind     text    NOT NULL,
    n        integer NOT NULL CHECK (n > 0),
    PRIMARY KEY (post_id, kind)
);

-- Users whose account is gone: they publish nothing more.
CREATE TABLE deleted_authors (
    user_id     uuid        PRIMARY KEY,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
