-- Deliveries are looked up by provider message id only once the provider has given one; a
-- partial index leaves the million rows of a new broadcast out of it until then (cheaper
-- materialising, a smaller index).
DROP INDEX IF EXISTS deliveries_provider;
CREATE INDEX deliveries_provider ON deliveries(channel_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
