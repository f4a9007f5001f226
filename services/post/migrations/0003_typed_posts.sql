-- Typed posts (text, highlight, ask, moment): posts written before types existed are text.
ALTER TABLE posts ADD COLUMN type text NOT NULL DEFAULT 'text';
ALTER TABLE posts ADD COLUMN typed text NOT NULL DEFAULT '';  -- the type's fields as JSON
ALTER TABLE posts ADD COLUMN answer_comment_id uuid;  -- an ask's answering comment
ALTER TABLE posts ADD COLUMN answer_author_id uuid;
