-- A data key per niche: its name and description are sealed under it in the event log
-- (kith.graph.niche_keys); destroyed when the niche is archived.
CREATE TABLE IF NOT EXISTS niche_keys (
    niche_id uuid PRIMARY KEY,
    key      bytea NOT NULL
);
