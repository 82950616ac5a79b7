-- "Retry failed" sends a finished broadcast's failed deliveries again, as a new round: the
-- round is part of the idempotency key, so a provider that accepted the first try (and later
-- reported it undelivered) takes the retry as a new message.
ALTER TABLE deliveries ADD COLUMN retry_round BIGINT NOT NULL DEFAULT 0;

-- The results table's "Replied" filter walks only the replied deliveries.
CREATE INDEX deliveries_replied ON deliveries(broadcast_id, id) WHERE replied_at IS NOT NULL;
