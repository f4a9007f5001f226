-- Per-author data keys: post and comment texts are sealed in events under their
-- author's key; deleting the account destroys the key (crypto-shredding).
CREATE TABLE author_keys (
    user_id  uuid  PRIMARY KEY,
    key      bytea NOT NULL
);
