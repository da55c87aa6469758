-- Channel secrets at rest are sealed (AES-256-GCM, gateway/sealing.py) under the operator's
-- sealing key. SQL cannot seal, so `gateway migrate` moves any plaintext `secret` into
-- `secret_sealed` right after the migrations and clears it; from then on `secret` stays NULL.
ALTER TABLE channels ADD COLUMN secret_sealed BYTEA;
ALTER TABLE channels ADD CONSTRAINT channels_one_secret_column
    CHECK (secret IS NULL OR secret_sealed IS NULL);

-- The operator's task search: by channel and time (ids grow with time), newest first.
CREATE INDEX tasks_channel_recent_idx ON tasks (channel_id, id DESC) WHERE channel_id IS NOT NULL;
