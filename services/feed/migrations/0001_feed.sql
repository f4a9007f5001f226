-- The fan-out worker's audience index and the feed entries it maintains.
-- Users and niches get bigint surrogates (feed_refs): the feed table's key is
-- half as wide as with uuids, and index maintenance is what bounds fan-out
-- (docs/feed.md has the measurements). Post ids stay uuids so that the feed
-- order (created_at_ms, post_id) is a function of the events alone.

CREATE TABLE IF NOT EXISTS feed_refs (
    uuid  uuid   PRIMARY KEY,
    id    bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);

-- floor_*: the key of the F-th newest live post (NULL while fewer than F are
-- live). A member without blocks towards the niche's authors sees exactly the
-- live posts at or above the floor.
CREATE TABLE IF NOT EXISTS feed_niches (
    id                   bigint  PRIMARY KEY,
    archived             boolean NOT NULL DEFAULT false,
    live_posts           integer NOT NULL DEFAULT 0,
    floor_created_at_ms  bigint,
    floor_post_id        uuid
);

CREATE TABLE IF NOT EXISTS feed_members (
    niche_id  bigint NOT NULL,
    user_id   bigint NOT NULL,
    PRIMARY KEY (niche_id, user_id)
);
CREATE INDEX IF NOT EXISTS feed_members_by_user ON feed_members (user_id, niche_id);

-- Directed, as recorded; "blocked either way" is checked in both directions.
CREATE TABLE IF NOT EXISTS feed_blocks (
    blocker  bigint NOT NULL,
    blocked  bigint NOT NULL,
    PRIMARY KEY (blocker, blocked)
);
CREATE INDEX IF NOT EXISTS feed_blocks_by_blocked ON feed_blocks (blocked, blocker);

-- Every post ever seen, so that joins back-fill and deletions refill.
CREATE TABLE IF NOT EXISTS feed_posts (
    post_id        uuid    PRIMARY KEY,
    niche_id       bigint  NOT NULL,
    author_id      bigint  NOT NULL,
    created_at_ms  bigint  NOT NULL,
    deleted        boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS feed_posts_live ON feed_posts (niche_id, created_at_ms DESC, post_id DESC)
    WHERE NOT deleted;
CREATE INDEX IF NOT EXISTS feed_posts_by_author ON feed_posts (author_id, niche_id);

-- One index serves everything: the niche feed is a range of the key, the home
-- feed a merge of the viewer's niche ranges, a retraction a key lookup per
-- member, a purge a key prefix.
CREATE TABLE IF NOT EXISTS feed_entries (
    user_id        bigint NOT NULL,
    niche_id       bigint NOT NULL,
    created_at_ms  bigint NOT NULL,
    post_id        uuid   NOT NULL,
    author_id      bigint NOT NULL,
    PRIMARY KEY (user_id, niche_id, created_at_ms, post_id)
);
