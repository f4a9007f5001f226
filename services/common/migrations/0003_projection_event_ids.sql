-- Which event a projection applied at each stream's last version: a redelivery must be that
-- very event; a different one at a known version (a failover that re-issued the version)
-- stops the projection instead of being dropped as a duplicate. NULL for rows written
-- before this column existed (their next event is checked by version only).
ALTER TABLE projection_streams ADD COLUMN IF NOT EXISTS event_id uuid;
