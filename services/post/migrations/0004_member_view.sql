-- Post's view of niche memberships, projected from graph's events (kith.post.membership):
-- the publish check reads it while it is current, and asks graph otherwise.
CREATE TABLE member_view (
    user_id  uuid NOT NULL,
    niche_id uuid NOT NULL,
    role     text NOT NULL,
    PRIMARY KEY (user_id, niche_id)
);
CREATE INDEX member_view_by_niche ON member_view (niche_id);
