-- Providers repeat webhooks when unsure they arrived: an inbound message is looked up by its
-- provider id before it is stored.
CREATE INDEX messages_provider ON messages(channel_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
