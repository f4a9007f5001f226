-- The claim that attached a photo: a retried command (same claim, derived from its
-- idempotency key) finds its photos already attached and claims them again as a no-op.
ALTER TABLE media ADD COLUMN IF NOT EXISTS attached_by_claim uuid;
