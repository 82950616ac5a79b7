-- A delivery whose request may have reached a provider that cannot tell (Telegram, plain
-- SMTP) is 'unknown', never sent again on its own; 'expired' was in the model already.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'expired', 'unknown'));
-- How many of a broadcast's deliveries are unknown: counted apart from the failed ones.
ALTER TABLE broadcasts ADD COLUMN unknown_count BIGINT NOT NULL DEFAULT 0;
