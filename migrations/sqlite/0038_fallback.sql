-- Channel fallback (issue 28): a broadcast may try the next picked channel that reaches a
-- customer when the first has not delivered within `fallback_hours`, or failed for good.
-- The delivery row stays the person's one outcome; each channel it left is kept in
-- delivery_hops (the chain the recipients table shows).
ALTER TABLE broadcasts ADD COLUMN fallback_hours INTEGER;
-- How many channels this delivery fell back from (0: first-hand).
ALTER TABLE deliveries ADD COLUMN hops INTEGER NOT NULL DEFAULT 0;
-- A later picked channel may still take it: looked at by the fallback sweep.
ALTER TABLE deliveries ADD COLUMN fallback_open INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_fallback ON deliveries(broadcast_id, state, sent_at) WHERE fallback_open;
CREATE INDEX deliveries_fallen ON deliveries(broadcast_id, channel_id) WHERE hops > 0;
CREATE TABLE delivery_hops (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id         INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    broadcast_id        INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    channel_id          INTEGER NOT NULL REFERENCES channels(id),
    state               TEXT NOT NULL,
    provider_message_id TEXT,
    error               TEXT,
    sent_at             TEXT,
    left_at             TEXT NOT NULL,
    -- What the provider reported about this message after Herald had moved on.
    late                TEXT
);
CREATE INDEX delivery_hops_delivery ON delivery_hops(delivery_id);
CREATE INDEX delivery_hops_provider ON delivery_hops(channel_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX delivery_hops_broadcast ON delivery_hops(broadcast_id, channel_id);
