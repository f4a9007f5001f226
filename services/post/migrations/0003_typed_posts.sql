-- Typed posts (text, highlight, ask, moment): posts written before types existed are text.
ALTER TABLE posts ADD COLUMN type text NOT NULL DEFAULT 'text';
ALTER TABLE posts ADD COLUMN typed text NOT NULL DEFAULT '';  -- the type's fields as JSON
ALTER TABLE posts ADD COLUMN answer_comment_id uuid;  -- an ask's answering comment
ALTER TABLE posts ADD COLUMN answer_author_id uuid;

-- A book club's shelf: one row per live highlight (book_key: the ISBN, else title+author).
CREATE TABLE highlights (
    post_id     uuid        PRIMARY KEY,
    niche_id    uuid        NOT NULL,
    author_id   uuid        NOT NULL,
    book_key    text        NOT NULL,
    title       text        NOT NULL,
    author      text        NOT NULL,
    isbn        text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL
);
CREATE INDEX highlights_by_niche ON highlights (niche_id, book_key);

-- Life events, for "upcoming" (the yearly returns of birthdays, weddings, ...).
CREATE TABLE moments (
    post_id    uuid PRIMARY KEY,
    niche_id   uuid NOT NULL,
    author_id  uuid NOT NULL,
    kind       text NOT NULL,
    date       date NOT NULL
);
CREATE INDEX moments_by_niche ON moments (niche_id, kind);
