-- Member profiles (a persona per niche), their skills and endorsements: written in the
-- same transaction as the profile events they reflect. Rows of people who left a niche
-- stay but are never shown (every query joins the live memberships).

CREATE TABLE member_profiles (
    niche_id        uuid NOT NULL,
    user_id         uuid NOT NULL,
    display_name    text NOT NULL DEFAULT '',
    headline        text NOT NULL DEFAULT '',
    birthday        text NOT NULL DEFAULT '',  -- MM-DD or ''
    reading_title   text NOT NULL DEFAULT '',
    reading_author  text NOT NULL DEFAULT '',
    PRIMARY KEY (niche_id, user_id)
);
CREATE INDEX member_profiles_by_user ON member_profiles (user_id);

CREATE TABLE member_skills (
    niche_id      uuid    NOT NULL,
    user_id       uuid    NOT NULL,
    name          text    NOT NULL,  -- trimmed, lower-case
    level         text    NOT NULL DEFAULT '',
    endorsements  integer NOT NULL DEFAULT 0 CHECK (endorsements >= 0),
    PRIMARY KEY (niche_id, user_id, name)
);
-- The skill directory searches by prefix ("bik" finds "bike repair"): text_pattern_ops
-- serves LIKE 'prefix%' whatever the database collation.
CREATE INDEX member_skills_prefix ON member_skills (name text_pattern_ops, niche_id);
CREATE INDEX member_skills_by_user ON member_skills (user_id);

CREATE TABLE skill_endorsements (
    niche_id     uuid NOT NULL,
    user_id      uuid NOT NULL,
    skill        text NOT NULL,
    endorser_id  uuid NOT NULL,
    PRIMARY KEY (niche_id, user_id, skill, endorser_id)
);
CREATE INDEX skill_endorsements_by_endorser ON skill_endorsements (endorser_id);

-- Per-member data keys: profiles and endorsed skills are sealed in events under the
-- member's key; deleting the account destroys it (crypto-shredding).
CREATE TABLE profile_keys (
    user_id  uuid  PRIMARY KEY,
    key      bytea NOT NULL
);
