-- A/B tests (issue 28): a broadcast may carry further variants of its message; each
-- recipient gets one, by a split seeded per broadcast. With a test share, the recipients
-- outside it wait (variant -1) until the winner is chosen, and then get the winner.
-- The plan: further variants (B, C, …), the split, the measure and the wait (JSON).
ALTER TABLE broadcasts ADD COLUMN ab TEXT;
-- How many variants it is split between (0: no test).
ALTER TABLE broadcasts ADD COLUMN ab_variants BIGINT NOT NULL DEFAULT 0;
ALTER TABLE broadcasts ADD COLUMN ab_winner BIGINT;
ALTER TABLE broadcasts ADD COLUMN ab_decided_at TIMESTAMPTZ;
ALTER TABLE broadcasts ADD COLUMN ab_reason TEXT;
-- The variant this delivery sends (0 is A); -1 while it waits for the winner.
ALTER TABLE deliveries ADD COLUMN variant BIGINT NOT NULL DEFAULT 0;
CREATE INDEX deliveries_awaiting_winner ON deliveries(broadcast_id) WHERE variant < 0;
