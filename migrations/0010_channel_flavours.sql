-- Which kind of midjourney-proxy a channel is (gateway/routing/flavours.py): new tasks go only to
-- channels whose flavour offers their endpoint. Channels added before are taken as plus, which
-- offers every classic endpoint, as the gateway assumed until now.
ALTER TABLE channels ADD COLUMN flavour TEXT NOT NULL DEFAULT 'plus'
    CHECK (flavour IN ('plus', 'open-source', 'trueai'));
