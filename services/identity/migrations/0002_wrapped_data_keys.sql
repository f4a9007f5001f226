-- Data keys are stored wrapped under a key-encryption key (kith.common.crypto.Keyring):
-- 'kw1' || KEK id || nonce || AES-GCM(data key), no longer exactly 32 bytes.
ALTER TABLE data_keys DROP CONSTRAINT IF EXISTS data_keys_data_key_check;
ALTER TABLE data_keys ADD CONSTRAINT data_key_raw_or_wrapped
    CHECK (length(data_key) = 32 OR substring(data_key FROM 1 FOR 3) = '\x6b7731'::bytea);
